/* libttmem C API: report device-memory allocations to ttmemd from any runtime.
 * Same semantics as ttmem/client.hpp (the process-wide client configured from the environment):
 * TTMEM_SOCKET, TTMEM_TRACKING=0, TT_ALLOC_TRACKING_ENABLED. All functions are thread-safe; the report
 * functions never block except for bounded backpressure, and never fail loudly. */
#ifndef TTMEM_TTMEM_H
#define TTMEM_TTMEM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum ttmem_buffer_type {
  TTMEM_DRAM = 0,
  TTMEM_L1 = 1,
  TTMEM_SYSTEM_MEMORY = 2,
  TTMEM_L1_SMALL = 3,
  TTMEM_TRACE = 4
};
enum ttmem_kind {
  TTMEM_OWNING = 0,
  TTMEM_PREALLOCATED = 1,
  TTMEM_CIRCULAR_BUFFER = 2,
  TTMEM_KERNEL_BINARY = 3,
  TTMEM_TRACE_BUFFER = 4
};
enum ttmem_release_reason {
  TTMEM_FREE_EXPLICIT = 0,
  TTMEM_FREE_CLOSE_INTERNAL = 1,
  TTMEM_FREE_CLOSE_LEAK = 2
};
enum ttmem_close_phase { TTMEM_CLOSE_BEGIN = 0, TTMEM_CLOSE_END = 1 };
enum ttmem_failure_reason { TTMEM_OUT_OF_MEMORY = 0, TTMEM_CB_CLASH = 1, TTMEM_BAD_BANK_COUNT = 2 };

/* Zero-initialise the structs (`ttmem_alloc a = {0};`): a field added later takes 0, its default. */
typedef struct ttmem_alloc {
  uint16_t device;
  uint8_t buffer_type; /* enum ttmem_buffer_type */
  uint8_t kind;        /* enum ttmem_kind */
  uint32_t site;       /* from ttmem_intern_site, 0 for none */
  uint64_t id;         /* unique in the process, never an address */
  uint64_t size;
  uint64_t address;
  uint32_t num_banks;
  uint32_t mesh;
  uint64_t size_per_bank;
  uint32_t internal;     /* non-zero: runtime-owned */
  uint32_t scope;        /* op scope (ttmem_push_op's id); 0: the calling thread's current one */
  uint64_t timestamp_ns; /* CLOCK_MONOTONIC, 0: stamped by the library */
} ttmem_alloc;

typedef struct ttmem_device {
  uint16_t device;
  uint8_t arch; /* 0 wormhole_b0, 1 blackhole */
  uint32_t mesh;
  uint64_t total_bytes[5]; /* by buffer type */
  uint32_t num_banks[5];
  uint64_t base_address[5]; /* where each type's range starts in every bank */
} ttmem_device;

typedef struct ttmem_alloc_failure {
  uint16_t device;
  uint8_t buffer_type; /* enum ttmem_buffer_type */
  uint8_t reason;      /* enum ttmem_failure_reason */
  uint32_t num_banks;
  uint64_t size;
  uint64_t page_size;
  uint64_t size_per_bank; /* what each bank needed to hold */
  uint64_t timestamp_ns;  /* CLOCK_MONOTONIC, 0: now */
  const char* site;       /* may be NULL */
  const char* message;    /* the runtime's error text; may be NULL */
} ttmem_alloc_failure;

typedef struct ttmem_counters {
  uint64_t events, bytes, batches, stall_ns, reconnects, snapshots, superseded_events, flushes;
  uint64_t dropped_events,
      gaps; /* recording stopped when the server could not keep up; each gap ends in a resync */
  int connected;
} ttmem_counters;

typedef struct ttmem_snapshot ttmem_snapshot;
typedef void (*ttmem_resync_fn)(ttmem_snapshot* snapshot, void* user);

/* Non-zero when tracking is on and connected. */
int ttmem_active(void);
/* Waits up to timeout_ms for the first connection attempt to finish; returns ttmem_active(). Short-lived
 * programs call it once at start so their first allocations are tracked. */
int ttmem_wait_connected(uint32_t timeout_ms);
uint32_t ttmem_intern_site(const char* text);
/* Ops: the calling thread enters op `name` (nested in its current one) until ttmem_pop_op; allocations it
 * reports meanwhile carry the op's path ("outer/inner"). Returns the path's id (a site id). */
uint32_t ttmem_push_op(const char* name);
void ttmem_pop_op(void);
void ttmem_report_alloc(const ttmem_alloc* allocation);
void ttmem_report_free(uint16_t device, uint64_t id, uint8_t reason);
void ttmem_device_open(const ttmem_device* device);
/* An allocation the runtime refused: ttmemd keeps an out-of-memory record of the device at that point. */
void ttmem_report_alloc_failure(const ttmem_alloc_failure* failure);
void ttmem_device_close(uint16_t device, uint8_t phase);
/* 1 when the server applied everything reported before the call, 0 on timeout or when not connected. */
int ttmem_flush(uint32_t timeout_ms);
void ttmem_get_counters(ttmem_counters* out);
/* Called on every (re)connect: call ttmem_snapshot_begin under your lock, then list devices and allocations.
 */
void ttmem_set_resync_callback(ttmem_resync_fn fn, void* user);
void ttmem_snapshot_begin(ttmem_snapshot* snapshot);
void ttmem_snapshot_device(ttmem_snapshot* snapshot, const ttmem_device* device);
void ttmem_snapshot_alloc(ttmem_snapshot* snapshot, const ttmem_alloc* allocation);

#ifdef __cplusplus
}
#endif

#endif /* TTMEM_TTMEM_H */
