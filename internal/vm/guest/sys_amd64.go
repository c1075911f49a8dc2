package guest

// sysFinitModule is finit_module(2)'s number on x86-64 (the stdlib syscall package lacks it).
const sysFinitModule = 313
