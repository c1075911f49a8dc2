// Package modload is modload's loading engine: in one process it does what kmod's
// "modprobe NAME" does for each of many names, loading what they need as one parallel graph and
// asking the kernel for each module file once — across goroutines and, through the duplicate
// gate (package gate), across processes. It is what a Go init (u-root, booster, gokrazy,
// Talos) adopts to load modules, and what every loader of modload runs on: modprobe, insmod,
// "modload load" and the VM guest's loader.
//
// # Opening
//
// Open takes everything explicitly: the module directory (ModuleBase, KernelVersion), the
// modprobe.d configuration (ConfigRoot, ConfigPaths), kernel state (SysRoot), the runtime
// directory of the gate's locks and results, a worker bound, the duplicate mode (Dedup; the
// environment and /etc/modload.conf are read only by DedupFromEnvironment, which modload's
// tools call), the Kernel (RealKernel, or package modloadtest's fake), a hook for install and
// remove commands (default /bin/sh -c, as kmod) and a hook for progress and log events.
//
// # Resolving and loading
//
// Plan is the dry run: every module the requests need, each once, in a valid load order; its
// lines are modprobe -n -v's ("insmod PATH PARAMS", "install COMMAND PARAMS"), exactly the union
// of what modprobe -n -v prints for each request alone (checked against kmod 30 on the Debian
// 12 tree by internal/difftest). Load resolves and executes: requests are module names,
// aliases, device modaliases or "symbol:NAME"; per request the semantics are kmod's:
//
//   - hard dependencies (modules.dep) load first and must succeed, or the module is skipped;
//   - softdeps load before (pre) or after (post) their module, but their failure blocks
//     nothing, as in kmod;
//   - the blacklist applies to modules matched through an alias, and with PlanOptions.Blacklist
//     (modprobe -b) to modules asked for by name;
//   - install commands run where kmod runs them (not for a module with softdeps, nor with
//     PlanOptions.IgnoreInstall);
//   - options are merged once: configuration, kernel command line, then the request's own;
//   - a target already in the kernel ends its request at once.
//
// Every kernel load goes through the gate. The Report has every request and every module once,
// with its Status (loaded, already live, builtin, installed, coalesced in-process or
// cross-process, remembered failure, busy, blacklisted, not found, skipped, failed), its error
// and the time it took; Report.Err is what kmod's exit status would say.
//
// Coldplug loads the drivers of every device under <SysRoot>/sys/devices, repeating until no
// new device appears: the core of a Go init.
//
// # Errors
//
// ErrNotFound is matched by every "not found", whichever package it comes from
// (resolve.ErrNotFound, loader.ErrNotFound and moddb.ErrNotFound are the same value); kernel
// errors match their syscall.Errno; ErrDependency marks a module skipped because one it needs
// failed.
//
// # modprobe's own entry points
//
// Probe executes one kmod probe list (resolve.Resolver.PlanModule) exactly as modprobe NAME
// walks it, Remove is modprobe -r, LoadFile is insmod: the tools use them to keep kmod's
// messages byte for byte.
package modload
