#!/bin/sh
# Regenerates testdata/tree (run from this directory; needs gcc, openssl, xz, zstd, kmod's depmod).
# The committed tree is what the tests use; this script documents how it was made.
set -e
D=../tree/lib/modules/1.0-test/kernel/drivers
mkdir -p $D
gcc -c -O0 -fno-pic foo-bar.c -o foo-bar.ko
gcc -c -O0 -fno-pic nomodinfo.c -o nomodinfo.ko
openssl req -new -nodes -utf8 -sha512 -days 36500 -batch -x509 -config x509.cnf -outform PEM \
	-out cert.pem -keyout key.pem -newkey rsa:2048 -set_serial 0x8a1b2c3d4e5f60718293a4b5c6d7e8f901020304
openssl cms -sign -binary -noattr -nocerts -outform DER -md sha512 -signer cert.pem -inkey key.pem \
	-in foo-bar.ko -out sig.p7
# struct module_signature: algo 0, hash 0, id_type 2 (PKCS#7), signer_len 0, key_id_len 0, pad, sig_len BE
python3 -c 'import struct,sys; b=open("foo-bar.ko","rb").read(); s=open("sig.p7","rb").read(); sys.stdout.buffer.write(b+s+struct.pack(">BBBBB3xI",0,0,2,0,0,len(s))+b"~Module signature appended~\n")' > signed.ko
cp foo-bar.ko nomodinfo.ko signed.ko $D/
xz -c signed.ko > $D/xzmod.ko.xz
zstd -q -c foo-bar.ko > $D/zstmod.ko.zst
printf 'kernel/fs/builtin-one.ko\nkernel/lib/builtin_two.ko\n' > ../tree/lib/modules/1.0-test/modules.builtin
printf 'builtin_one.license=GPL\0builtin_one.description=First builtin\0builtin_one.parm=opt:An option\0builtin_one.parmtype=opt:uint\0builtin_one.alias=fs-builtin-one\0other.license=MIT\0builtin_one.file=fs/builtin-one\0' > ../tree/lib/modules/1.0-test/modules.builtin.modinfo
depmod -b ../tree 1.0-test
rm -f key.pem cert.pem sig.p7 *.ko
