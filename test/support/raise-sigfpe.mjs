// Preloaded (`node --import`) into a backbone check process by its test: the process dies of SIGFPE, as
// libtensorflow's oneDNN kernels kill it on some backbones (issue 16), and the parent must survive it.
process.kill(process.pid, 'SIGFPE');
