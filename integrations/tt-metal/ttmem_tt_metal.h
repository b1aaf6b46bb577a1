/* ttmem for a real TT-Metal process: a GraphTracker processor that reports every buffer, circular buffer,
 * dataflow buffer and scratchpad, with the op stack, to ttmemd through libttmem (docs/integrating.md).
 * C linkage so Python (ctypes) and C can call it as well as C++. */
#ifndef TTMEM_TT_METAL_H
#define TTMEM_TT_METAL_H

#ifdef __cplusplus
extern "C" {
#endif

/* Call once, early (before the first device opens), on the thread that runs ops. Registers the
 * process-wide buffer observer where the TT-Metal version has one, and pushes the processor on the
 * calling thread. Idempotent. Returns 0, or -1 when tracking is turned off (TTMEM_TRACKING=0). */
int ttmem_tt_metal_enable(void);

/* TT-Metal's processor list is per thread (since PR #44668): call this on every other thread that
 * allocates buffers or runs ops, on versions without the process-wide observer (on versions with it,
 * only threads that run programs or ops need it). Idempotent per thread. */
void ttmem_tt_metal_track_this_thread(void);

/* The device (a MeshDevice's id, or a chip's) is closing: call it just before close_mesh_device(). Its
 * program-scope L1 goes with the program cache; what is still allocated on it is reported as leaked. */
void ttmem_tt_metal_close_device(unsigned device_id);

/* Releases of buffers allocated before tracking began (counted, never passed on). */
unsigned long long ttmem_tt_metal_untracked_releases(void);

#ifdef __cplusplus
}
#endif

#endif
