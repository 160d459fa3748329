// dir_lock.h: one run at a time in a folder. An exclusive flock on DIR/.lock, holding the owner's PID
// for the message; the kernel drops it when the owner exits, however it exits, so a lock left by a
// killed run is simply free again (no stale-lock cleanup needed).
#pragma once
#include "../kernels/check.h"

// Takes DIR's lock (creating DIR/.lock); *fd keeps it. -1 with e = "DIR is in use by PID N ..." when
// another run holds it.
int dir_lock(const char* dir, int* fd, Err* e);
// The same, except that while another run holds it this waits (saying so on stderr) for it to be free.
int dir_lock_wait(const char* dir, int* fd, Err* e);
// The same on the lock file `path` itself (created when absent), waiting while another run holds it.
int file_lock_wait(const char* path, int* fd, Err* e);
void dir_unlock(int fd);
