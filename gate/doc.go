// Package gate is modload's duplicate gate: the one place that decides whether a module load
// request reaches the kernel. Every load goes through [Gate.Load]; the rules, in order:
//
//  1. Builtin (Request.Builtin, from modules.builtin) or live
//     (<Root>/sys/module/<name>/initstate is "live"): served at once, outcome AlreadyLive — no
//     open and no kernel call.
//  2. Identity is the file's (st_dev, st_ino) from stat(2), taken before the file is opened. A
//     missing or non-regular file is an error naming the module and the file.
//  3. Mode off stops here: the LoadFunc is called (like kmod: no coalescing, no locks, no
//     failure memory). In every mode the LoadFunc gets the identity from [LoadingIdentity] to
//     check against what it opens.
//  4. Recursion: a request for an identity that the same call chain is loading (the context
//     passed to a LoadFunc carries the chain) fails with ErrRecursive (EDEADLK) instead of
//     waiting for itself. The gate never runs commands while holding a lock (install commands
//     run without one; see package loader's MODLOAD_INSTALL_CHAIN for their loops), so a lock
//     held by another process, even an ancestor such as an in-process loader running as /init,
//     is a separate load that ends: it is waited for. A module whose init asks for itself
//     through the kernel's modprobe helper (not our descendant) would wait for itself: a
//     request for a coming module made by the kernel's usermode helper (this process's parent
//     is a kernel thread, PF_KTHREAD in /proc/<ppid>/stat) is answered at once, outcome Busy,
//     ErrSelfRequest (EBUSY), instead of at the wait deadline (kmod on 6.1 would wait forever
//     there). The kernel's own request for a module another loader has coming gets the same
//     answer: the helper cannot tell the two apart.
//  5. In-process coalescing: the first request for an identity leads; concurrent requests for
//     it wait for the leader and receive its exact result (outcome CoalescedLocal, kernel 6.5
//     semantics). Forced and unforced requests (Request.Force), and requests with different
//     parameters (Request.Params), are separate loads: neither joins the other's flight (the
//     second one waits for the first's lock, rule 8). A waiter's context cancels its wait only;
//     if the leader gave up because of its own context, a waiter takes over instead of
//     inheriting the cancellation. Mode busy: the duplicate gets EBUSY (ErrBusy) at once.
//  6. Coming (initstate "coming"; a directory without initstate is not coming but a builtin
//     that modules.builtin did not name, or a module microseconds before its attributes: the
//     kernel is called at once there, as kmod does): mode busy answers EBUSY; mode wait takes
//     the identity's lock (the modload process loading it holds that lock, so this waits on it
//     without polling), then, if the module is still coming — loaded by something outside the
//     gate, kmod or the kernel — waits for the module's "add@/module/<name>" uevent, which the
//     kernel sends once its init returned (Linux 5.3 and later), on a netlink socket whose
//     filter drops every other message; initstate is re-read at 50 ms doubling to 1 s, for an
//     init that fails (no event), and polled at 1 ms doubling to 100 ms where no uevent socket
//     can be opened; bounded by ctx and the wait deadline. Live: outcome WaitedComing. Gone
//     (its init failed): the request goes on and loads it.
//  7. Failure memory: a failure remembered for this boot, this file (identity, size and mtime)
//     and these parameters (Request.Params: a module's ENODEV often depends on them, it87
//     force_id=, parport_pc io=; other parameters are a new attempt) is returned without a
//     kernel call: outcome RememberedFailure, error matching ErrRemembered and the errno. Only
//     the module's own failures are remembered: ENODEV, ENXIO, ENOEXEC, EKEYREJECTED, EBADMSG,
//     ENOKEY. Never EBUSY, EINTR, EAGAIN, ENOMEM, ETXTBSY (transient), ENOENT (unknown symbol:
//     a missing dependency), EINVAL (bad parameters or image), EPERM (policy) or EEXIST. The
//     kernel's EEXIST is success only when the module is in the kernel: live, or coming and
//     then live. When it is not, the EEXIST came from the module's own init (the kernel waits
//     for another loader's coming module and answers EEXIST only for a module in its list), and
//     that EEXIST is remembered, without a second call to confirm it (an EEXIST of a module in
//     the kernel is recorded as success).
//     [Gate.List] lists exactly what an unforced request would be served now (this boot; the
//     recorded path still names the same identity, size and mtime; the module not live) and
//     [Gate.Forget] clears it (one module or all). Force: a Request with Force (modprobe -f,
//     --force-*) skips this lookup and goes to the kernel. Its result is recorded apart, keyed
//     by identity and force (<dev>-<ino>.forced-result): it is shared with concurrent forced
//     requests (rule 8) but never served from memory, and it leaves the unforced record alone.
//     So a later unforced request still gets what an unforced load gets: live if the forced
//     load succeeded (rule 1), else the unforced failure remembered before, or else the kernel
//     — never a failure that forcing itself caused (EKEYREJECTED: a forced module's signature
//     is not checked).
//  8. Cross-process: the leader takes an flock on <RuntimeDir>/<dev>-<ino>.lock (created 0600
//     with O_NOFOLLOW in a directory that must be root-owned, not a symlink, and not group or
//     world writable), exclusive. Mode busy: a held lock means EBUSY. Mode wait: wait for the
//     lock *shared* (an inotify watch for closes of the lock file, then a non-blocking flock
//     and a wait in the network poller until the holder's close or the deadline; without
//     inotify, flock in a goroutine beside a timer): when the
//     holder lets go, every waiter holds it at once, woken once, rather than being handed the
//     exclusive lock in turn (a thundering herd of re-blocking waiters per handoff). The lock
//     is per identity (forced or not); the holder records the kernel's result in
//     <dev>-<ino>.result, or <dev>-<ino>.forced-result when forced (boot id, a fresh nonce,
//     name, absolute path, size, mtime, the parameters (hex), errno; written by rename, so
//     readers see whole files), and only when the kernel was called: a failure before the call
//     (Call.NotCalled: open, replaced file, decompression) is neither shared nor remembered.
//     The holder writes "<pid> <nonce>" in the lock file when it takes the lock, and its record
//     carries the same nonce. A waiter that finds a fresh record of this boot, of its own kind
//     (forced or not) and parameters, returns it without calling the kernel (outcome
//     CoalescedProcess); fresh means written by the holder it waited for or a later one: a
//     record other than the one it saw when the wait began, or one carrying the nonce in the
//     lock file (the holder may have recorded before the waiter looked, and released only
//     after). A recorded success is served only while the module is in the kernel. If the
//     holder was killed mid-load, its flock died with it and no record was written: the waiters
//     queue for the exclusive lock; the first re-checks the kernel (live: done; coming: rule 6;
//     else it loads) and records, the next ones find its record. Files in the runtime directory
//     are opened with O_NOFOLLOW and O_NONBLOCK and checked with fstat before they are read: a
//     FIFO, symlink or other non-regular file never blocks a request. A bad result file (not
//     regular, unreadable, corrupt) is taken as absent, with a warning (Options.Warn) naming
//     it. Fail open: when the runtime directory cannot be created or trusted (read-only, full
//     or missing /run early in boot, insecure), or a lock file cannot be created or trusted,
//     the request loads without the cross-process gate (the kernel called, its EEXIST checked
//     as in rule 7, nothing recorded or remembered; in-process coalescing remains).
//     Options.Warn is told once per Gate (a *RuntimeDirError naming the directory and the
//     cause, matching ErrUnlocked); [Gate.List] and [Gate.Forget] return that error. modload's
//     own state may cost the dedup, never a module load.
//  9. The leader calls the LoadFunc once while holding the lock (outcome Loaded) and records
//     the result. A LoadFunc makes one kernel call and takes no other gate lock, so a goroutine
//     never holds one load lock while waiting for another: lock order cannot deadlock. (Each loading goroutine holds at most one lock;
//     a process runs as many loads in parallel as its loader has workers.)
//
// Waits are bounded by ctx and by one deadline per Gate (a process has one), WaitTimeout after
// its first wait: a process waiting for a lock and then for a coming module, or for several
// modules (modprobe -a m1 m2 m3 whose shared dependency is stuck coming), waits WaitTimeout in
// all, then every wait gives up at once with ErrGaveUp (EBUSY). No wait spins: a waiter for
// another process's lock sleeps in the runtime's poller (one thread in epoll_wait, no timer but
// the deadline) and wakes once, when the holder closes the lock file after letting go of it.
// A wake that finds the lock still taken (another process closed the file; a holder killed
// mid-load: the kernel sends the close event before it drops the locks) is followed by re-tries
// at 1 ms doubling to 1 s, besides the events.
//
// The mode comes from Options.Mode (a command-line flag), else the environment variable
// MODLOAD_DEDUP, else the config file <Root>/etc/modload.conf, a list of "key = value" lines
// ('#' comments) with the key "dedup = wait|busy|off" (and "kmod = 30|34", the kmod release
// the tools reproduce, read by them). The default is wait. modload's own
// configuration may cost the dedup mode, never a load: a bad MODLOAD_DEDUP, a bad or overlong
// line, a config path that cannot be read (a directory, a FIFO) are skipped, the next source
// decides, and [Gate.Warnings] says what was ignored (file and line for a line).
//
// Every request is reported to the stats.Sink: Request, then one of AlreadyLive, WaitedComing,
// CoalescedLocal, CoalescedProcess, RememberedFailure, Busy, or KernelCall — KernelCall only
// when finit_module or init_module was called: a request that failed before any outcome, or
// whose LoadFunc failed before the kernel (Call.NotCalled), reports Request alone. Bytes of a
// CoalescedLocal event is 0 when its leader never reached the kernel (nothing was spared).
//
// The kernel's EEXIST is passed through as an error; callers treat it as success as kmod does
// (unless --first-time).
package gate
