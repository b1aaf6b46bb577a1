/* A C program using libttmem's C API, as another runtime would: open a device, report two circular
 * buffers, free one, report one with a memory type ttmem.h does not define (left out, with a warning),
 * flush, print the counters, and exit holding the other. */
#include <stdio.h>

#include "ttmem/ttmem.h"

int main(void) {
  ttmem_device d = {0};
  d.device = 5;
  d.total_bytes[TTMEM_DRAM] = 1ull << 30;
  ttmem_alloc a = {0};
  int ok;
  ttmem_counters counters;

  if (!ttmem_wait_connected(5000)) {
    fprintf(stderr, "no server\n");
    return 2;
  }
  ttmem_device_open(&d);
  a.device = 5;
  a.buffer_type = TTMEM_L1;
  a.kind = TTMEM_CIRCULAR_BUFFER;
  a.id = 42;
  a.size = 4096;
  a.site = ttmem_intern_site("c_api/cb0");
  ttmem_report_alloc(&a);
  a.id = 43;
  ttmem_report_alloc(&a);
  ttmem_report_free(5, 43, TTMEM_FREE_EXPLICIT);
  a.id = 44;
  a.buffer_type = 9; /* a caller's bug: no such memory type */
  ttmem_report_alloc(&a);
  ttmem_report_alloc(&a); /* said once */
  ok = ttmem_flush(5000);
  ttmem_get_counters(&counters);
  printf("flushed=%d connected=%d events=%llu\n", ok, counters.connected, (unsigned long long)counters.events);
  return ok == 1 && counters.connected ? 0 : 1;
}
