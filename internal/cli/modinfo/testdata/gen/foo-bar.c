#define MI(n, s) static const char n[] __attribute__((section(".modinfo"),used,aligned(1))) = s
MI(m1, "license=GPL");
MI(m2, "description=Foo bar test driver");
MI(m3, "author=Test Author <test@example.com>");
MI(m4, "parm=debug:Debug level");
MI(m5, "parmtype=debug:int");
MI(m6, "parmtype=quiet:bool");
MI(m7, "parm=verbose:Be verbose");
MI(m8, "parm=nocolon");
MI(m9, "alias=pci:v00001234d*sv*sd*bc*sc*i*");
MI(m10, "alias=foo-bar-alias");
MI(m11, "abcdefghijklmnopqrst=a key longer than fifteen");
MI(m12, "abcdefghijklmno=exactly fifteen");
MI(m13, "noequals");
MI(m14, "depends=");
MI(m15, "name=foo_bar");
MI(m16, "vermagic=1.0-test SMP mod_unload ");
static const char k[] __attribute__((section("__ksymtab_strings"),used,aligned(1))) = "foo_fn";
extern int needed_fn(void);
int foo_fn(void) { return needed_fn(); }
