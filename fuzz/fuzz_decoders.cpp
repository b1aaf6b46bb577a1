// Fuzz target: every protocol decoder, the frame reader over arbitrary chunking, and an oracle: the
// server's validate-then-decode path must agree with the reference decoder on every EVENTS payload.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "ttmem/protocol.hpp"

using namespace ttmem::proto;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  const std::span<const std::uint8_t> p(data + 1, size - 1);
  std::vector<EventRecord> events;
  switch (selector % 16) {
    case 0:
      decode_hello(p);
      break;
    case 1:
      decode_hello_ack(p);
      break;
    case 2:
      decode_device_open(p);
      break;
    case 3:
      decode_device_close(p);
      break;
    case 4: {
      const bool reference_ok = !decode_events(p, events).has_value();
      const bool validated = !validate_events(p).has_value();
      if (reference_ok != validated) std::abort();  // the two paths disagree
      if (validated) {
        for (std::size_t i = 0; i < events.size(); ++i) {
          const EventRecord e = event_at(p, i);
          if (e.id != events[i].id || e.size != events[i].size || e.device != events[i].device) std::abort();
        }
      }
      break;
    }
    case 5:
      decode_sites(p);
      break;
    case 6:
      decode_snapshot_begin(p);
      break;
    case 7:
      decode_snapshot_end(p);
      break;
    case 8:
      decode_barrier(p);
      break;
    case 9:
      decode_client_stats(p);
      break;
    case 10:
      decode_query(p);
      break;
    case 11:
      decode_query_reply(p);
      break;
    case 12:
      decode_error(p);
      break;
    case 14: {
      // What decodes re-encodes to the same bytes: no field is lost or invented on the way.
      auto f = decode_alloc_failure(p);
      if (ok(f)) {
        std::vector<std::uint8_t> again;
        encode(again, std::get<AllocFailure>(f));
        if (again.size() != p.size() + kFrameHeaderSize ||
            !std::equal(p.begin(), p.end(), again.begin() + kFrameHeaderSize))
          std::abort();
      }
      break;
    }
    default: {
      // A byte stream cut into chunks whose sizes come from the input itself.
      FrameReader reader(kMaxRequestPayload);
      std::size_t at = 0;
      while (at < p.size()) {
        const std::size_t chunk = 1 + p[at] % 64;
        const std::size_t n = std::min(chunk, p.size() - at);
        reader.append(p.subspan(at, n));
        at += n;
        for (int frames = 0; frames < 64; ++frames) {
          auto next = reader.next();
          if (!std::holds_alternative<Frame>(next)) break;
          if (std::get<Frame>(next).payload.size() > kMaxRequestPayload) std::abort();
        }
      }
    }
  }
  return 0;
}
