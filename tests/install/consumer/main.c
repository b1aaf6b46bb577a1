/* Reports a 5 MiB DRAM buffer on device 8 through the installed C API and flushes; exits 0 when ttmemd
 * applied it. */
#include <stdio.h>

#include "ttmem/ttmem.h"

int main(void) {
  ttmem_device d = {0};
  ttmem_alloc a = {0};
  if (!ttmem_wait_connected(5000)) {
    fprintf(stderr, "no ttmemd\n");
    return 2;
  }
  d.device = 8;
  d.total_bytes[TTMEM_DRAM] = 1ull << 30;
  ttmem_device_open(&d);
  a.device = 8;
  a.buffer_type = TTMEM_DRAM;
  a.id = 1;
  a.size = 5u << 20;
  a.site = ttmem_intern_site("consumer.c:21");
  ttmem_report_alloc(&a);
  return ttmem_flush(5000) == 1 ? 0 : 1;
}
