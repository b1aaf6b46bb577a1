// Fuzz target: the schema's readers — the input is read as every view and as a query. Whatever a reader
// accepts must write back to text that reads as the same value (an oracle, not only "no crash"), and
// whatever it refuses must be refused with a SchemaError, never another exception.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ttmem/schema.hpp"

namespace {

template <typename View>
void check(std::string_view text) {
  View v;
  try {
    v = ttmem::schema::from_json<View>(text);
  } catch (const ttmem::schema::SchemaError&) {
    return;
  }
  if (!(ttmem::schema::from_json<View>(ttmem::schema::to_json(v)) == v)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check<ttmem::views::Stats>(text);
  check<ttmem::views::DeviceList>(text);
  check<ttmem::views::BufferList>(text);
  check<ttmem::views::Leaks>(text);
  check<ttmem::views::EventList>(text);
  check<ttmem::views::StreamEvent>(text);
  check<ttmem::views::ServerInfo>(text);
  check<ttmem::views::OomList>(text);
  check<ttmem::views::AddressMap>(text);
  check<ttmem::views::OpList>(text);
  try {
    const ttmem::views::Query q = ttmem::schema::query_from_json(text);
    if (!(ttmem::schema::query_from_json(ttmem::schema::to_json(q)) == q)) std::abort();
  } catch (const ttmem::schema::SchemaError&) {
  }
  ttmem::schema::error_from_json(text);  // never throws
  return 0;
}
