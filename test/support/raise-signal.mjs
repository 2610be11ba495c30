// Preloaded (`node --import`) into a backbone check process by its test: the process dies of RAISE_SIGNAL (SIGFPE
// unless set), as libtensorflow's oneDNN kernels kill it on some backbones (issue 16) or as something outside stops
// it (SIGTERM), and the parent must survive either.
process.kill(process.pid, process.env.RAISE_SIGNAL ?? 'SIGFPE');
