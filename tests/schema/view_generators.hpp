// rapidcheck generators of arbitrary views, for the schema's round-trip properties. Strings are valid
// UTF-8 (invalid bytes are replaced on the way out, by design, so they cannot come back unchanged).
//
// The generators live in view_generators.cpp and draw each field in a gen::exec: rapidcheck's gen::build
// instantiates a tuple of setters per struct, and with every view in every test file that made one test
// file five minutes of the build.
#pragma once

#include <rapidcheck.h>

#include "ttmem/views.hpp"

namespace ttmem::test {

rc::Gen<views::FreeSpace> free_space_gen();
rc::Gen<views::Stats> stats_gen();
rc::Gen<views::DeviceList> device_list_gen();
rc::Gen<views::BufferList> buffer_list_gen();
rc::Gen<views::OpList> op_list_gen();
rc::Gen<views::Leak> leak_gen();
rc::Gen<views::Orphan> orphan_gen();
rc::Gen<views::Leaks> leaks_gen();
rc::Gen<views::EventRow> event_row_gen();
rc::Gen<views::EventList> event_list_gen();
rc::Gen<views::OomRecord> oom_record_gen();
rc::Gen<views::OomList> oom_list_gen();
rc::Gen<views::AddressMap> address_map_gen();
rc::Gen<views::StreamEvent> stream_event_gen();
rc::Gen<views::ServerInfo> server_info_gen();
rc::Gen<views::HistoryList> history_list_gen();
rc::Gen<views::Timeline> timeline_gen();
rc::Gen<views::Query> query_gen();

}  // namespace ttmem::test

namespace rc {

#define TTMEM_ARBITRARY_VIEW(View, generator)                                       \
  template <>                                                                       \
  struct Arbitrary<ttmem::views::View> {                                            \
    static Gen<ttmem::views::View> arbitrary() { return ttmem::test::generator(); } \
  };
TTMEM_ARBITRARY_VIEW(FreeSpace, free_space_gen)
TTMEM_ARBITRARY_VIEW(Stats, stats_gen)
TTMEM_ARBITRARY_VIEW(DeviceList, device_list_gen)
TTMEM_ARBITRARY_VIEW(BufferList, buffer_list_gen)
TTMEM_ARBITRARY_VIEW(OpList, op_list_gen)
TTMEM_ARBITRARY_VIEW(Leak, leak_gen)
TTMEM_ARBITRARY_VIEW(Orphan, orphan_gen)
TTMEM_ARBITRARY_VIEW(Leaks, leaks_gen)
TTMEM_ARBITRARY_VIEW(EventRow, event_row_gen)
TTMEM_ARBITRARY_VIEW(EventList, event_list_gen)
TTMEM_ARBITRARY_VIEW(OomRecord, oom_record_gen)
TTMEM_ARBITRARY_VIEW(OomList, oom_list_gen)
TTMEM_ARBITRARY_VIEW(AddressMap, address_map_gen)
TTMEM_ARBITRARY_VIEW(StreamEvent, stream_event_gen)
TTMEM_ARBITRARY_VIEW(ServerInfo, server_info_gen)
TTMEM_ARBITRARY_VIEW(HistoryList, history_list_gen)
TTMEM_ARBITRARY_VIEW(Timeline, timeline_gen)
TTMEM_ARBITRARY_VIEW(Query, query_gen)
#undef TTMEM_ARBITRARY_VIEW

}  // namespace rc
