// Package loader executes load plans: a graph of [Module] values (plain data; the caller adapts
// package resolve's plan) loaded through the duplicate gate.
//
// Contract of [Loader.Load]:
//   - The graph reachable from the targets (hard deps, softdep pre and post) is checked first:
//     a name missing from the graph is an *Error matching ErrNotFound, a cycle of hard
//     dependencies a *CycleError naming it (matching ErrCycle); nothing is loaded then. A cycle
//     through a softdep is broken by dropping the edge that closes it, as kmod breaks softdep
//     loops.
//   - Hard deps and pre softdeps load before a module, post softdeps after it. Independent
//     modules load in parallel, at most Options.Workers kernel loads at once. Each module is
//     attempted once per Load; concurrent Loads and other processes are merged by the gate.
//   - Nothing is half-loaded: a module whose hard dependency or pre softdep failed is not
//     attempted (ErrDependency); context cancellation stops modules not yet started.
//   - Install commands run instead of the kernel load, through "/bin/sh -c" as kmod runs them
//     (system(3)): "$CMDLINE_OPTS" replaced by the module's Params, MODPROBE_MODULE set to its
//     name. MODLOAD_INSTALL_CHAIN lists the modules whose install commands are running in this
//     process tree; a module found there is loaded from its file (an install command that asks
//     for its own module loads it, as "install m modprobe --ignore-install m" does) or, without
//     a file, fails with ErrNotFound instead of looping.
//   - [Loader.Unload] runs a module's remove command the same way, else delete_module with
//     O_NONBLOCK (kmod's KMOD_REMOVE_NOWAIT).
//   - Params is passed as given: the caller merges modprobe.d options, then the kernel command
//     line's name.param=value, then the request's parameters.
//   - Kernel calls: an uncompressed file goes to finit_module; a compressed file (detected by
//     magic: gzip, xz, zstd) goes to finit_module with MODULE_INIT_COMPRESSED_FILE when
//     <Root>/sys/module/compression names its format, else it is decompressed in userspace and
//     passed to init_module. MODULE_INIT_IGNORE_MODVERSIONS/_VERMAGIC only when forced; a forced
//     module that needs userspace decompression is passed to init_module with __versions
//     unallocated and its vermagic zeroed (kofile.Strip), as kmod does. finit_module's ENOSYS
//     falls back to init_module (flags 0 only), as kmod does.
//   - The file opened must be the one the gate identified by stat (gate.LoadingIdentity), and,
//     with Options.ReadImage (which reads by path), the one read: otherwise no kernel call, and
//     the load starts again through the gate, which stats the new file (a package upgrade
//     renaming a new file over the old one); after 3 attempts it fails with ErrReplaced. A failure before the kernel call (open, read,
//     decompression) is no kernel call in the statistics (gate.Call.NotCalled).
//   - The kernel's EEXIST, and the gate's "already live", are success, except for a target
//     with Options.FirstTime (modprobe --first-time).
//   - Errors are kmod-like, naming module and file: "could not insert 'm' (path): no such
//     device"; they wrap the errno (errors.Is(err, sys.ENODEV)) and the gate's sentinels.
package loader
