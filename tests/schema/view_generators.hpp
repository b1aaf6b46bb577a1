// rapidcheck generators of arbitrary views, for the schema's round-trip properties. Strings are valid
// UTF-8 (invalid bytes are replaced on the way out, by design, so they cannot come back unchanged).
#pragma once

#include <rapidcheck.h>

#include <map>

#include "ttmem/views.hpp"

namespace ttmem::test {

inline rc::Gen<std::string> text() {
  return rc::gen::map(
      rc::gen::container<std::vector<std::string>>(rc::gen::element<std::string>(
          "a", "Z", "0", " ", "_", ":", "/", "\"", "\\", "\n", "\t", "\x01", "é", "→", "\xf0\x9f\x98\x80")),
      [](const std::vector<std::string>& parts) {
        std::string s;
        for (const auto& p : parts) s += p;
        return s;
      });
}

template <NamedEnum E>
rc::Gen<E> any_of() {
  return rc::gen::elementOf(enum_values<E>());
}

/// Numbers that JSON carries exactly: whole numbers up to 2^64 - 1, and doubles of a few decimals.
inline rc::Gen<double> decimal() {
  return rc::gen::map(rc::gen::inRange<std::int64_t>(-1'000'000'000, 1'000'000'000),
                      [](std::int64_t n) { return static_cast<double>(n) / 1000.0; });
}

template <typename T>
rc::Gen<std::optional<T>> maybe(rc::Gen<T> g) {
  return rc::gen::oneOf(rc::gen::just(std::optional<T>()),
                        rc::gen::map(std::move(g), [](T v) { return std::optional<T>(std::move(v)); }));
}

}  // namespace ttmem::test

namespace rc {

template <>
struct Arbitrary<ttmem::views::FreeSpace> {
  static Gen<ttmem::views::FreeSpace> arbitrary() {
    using ttmem::views::FreeSpace;
    // Any finite ratio: JSON has no NaN or infinity, and the figure is a ratio of two counts.
    auto ratio = gen::map(gen::inRange<std::uint32_t>(0, 1u << 20),
                          [](std::uint32_t n) { return static_cast<double>(n) / (1u << 20); });
    return gen::build<FreeSpace>(gen::set(&FreeSpace::free), gen::set(&FreeSpace::free_per_bank),
                                 gen::set(&FreeSpace::largest_free_block), gen::set(&FreeSpace::free_blocks),
                                 gen::set(&FreeSpace::num_banks), gen::set(&FreeSpace::bank_size),
                                 gen::set(&FreeSpace::unplaced_buffers),
                                 gen::set(&FreeSpace::fragmentation, ratio));
  }
};

template <>
struct Arbitrary<ttmem::views::SlotUsage> {
  static Gen<ttmem::views::SlotUsage> arbitrary() {
    using ttmem::views::SlotUsage;
    return gen::build<SlotUsage>(
        gen::set(&SlotUsage::used), gen::set(&SlotUsage::peak), gen::set(&SlotUsage::buffers),
        gen::set(&SlotUsage::total),
        gen::set(&SlotUsage::space, ttmem::test::maybe(gen::arbitrary<ttmem::views::FreeSpace>())));
  }
};

template <>
struct Arbitrary<ttmem::views::Stats> {
  static Gen<ttmem::views::Stats> arbitrary() {
    using namespace ttmem::views;
    using ttmem::test::text;
    auto device = gen::build<DeviceUsage>(
        gen::set(&DeviceUsage::id),
        gen::set(&DeviceUsage::arch, ttmem::test::maybe(ttmem::test::any_of<ttmem::Arch>())),
        gen::set(&DeviceUsage::memory), gen::set(&DeviceUsage::buffers), gen::set(&DeviceUsage::processes));
    auto process =
        gen::build<ProcessUsage>(gen::set(&ProcessUsage::pid), gen::set(&ProcessUsage::name, text()),
                                 gen::set(&ProcessUsage::command, text()), gen::set(&ProcessUsage::device),
                                 gen::set(&ProcessUsage::bytes), gen::set(&ProcessUsage::buffers));
    return gen::build<Stats>(gen::set(&Stats::devices, gen::container<std::vector<DeviceUsage>>(device)),
                             gen::set(&Stats::processes, gen::container<std::vector<ProcessUsage>>(process)),
                             gen::set(&Stats::active_allocations));
  }
};

template <>
struct Arbitrary<ttmem::views::DeviceList> {
  static Gen<ttmem::views::DeviceList> arbitrary() {
    using namespace ttmem::views;
    using ttmem::test::text;
    auto user =
        gen::build<DeviceUser>(gen::set(&DeviceUser::pid), gen::set(&DeviceUser::name, text()),
                               gen::set(&DeviceUser::state, ttmem::test::any_of<ttmem::DeviceUseState>()));
    auto device = gen::build<DeviceInfo>(
        gen::set(&DeviceInfo::id),
        gen::set(&DeviceInfo::arch, ttmem::test::maybe(ttmem::test::any_of<ttmem::Arch>())),
        gen::set(&DeviceInfo::total),
        gen::set(&DeviceInfo::processes, gen::container<std::vector<DeviceUser>>(user)));
    return gen::build<DeviceList>(
        gen::set(&DeviceList::devices, gen::container<std::vector<DeviceInfo>>(device)));
  }
};

template <>
struct Arbitrary<ttmem::views::BufferList> {
  static Gen<ttmem::views::BufferList> arbitrary() {
    using namespace ttmem::views;
    using ttmem::test::text;
    auto row = gen::build<BufferRow>(
        gen::set(&BufferRow::pid), gen::set(&BufferRow::name, text()), gen::set(&BufferRow::device),
        gen::set(&BufferRow::type, ttmem::test::any_of<ttmem::BufferType>()),
        gen::set(&BufferRow::kind, ttmem::test::any_of<ttmem::AllocKind>()), gen::set(&BufferRow::id),
        gen::set(&BufferRow::size), gen::set(&BufferRow::address), gen::set(&BufferRow::site, text()),
        gen::set(&BufferRow::internal), gen::set(&BufferRow::age_ms));
    return gen::build<BufferList>(gen::set(&BufferList::buffers, gen::container<std::vector<BufferRow>>(row)),
                                  gen::set(&BufferList::total));
  }
};

template <>
struct Arbitrary<ttmem::views::Leak> {
  static Gen<ttmem::views::Leak> arbitrary() {
    using namespace ttmem::views;
    using ttmem::test::text;
    return gen::build<Leak>(gen::set(&Leak::pid), gen::set(&Leak::name, text()), gen::set(&Leak::device),
                            gen::set(&Leak::type, ttmem::test::any_of<ttmem::BufferType>()),
                            gen::set(&Leak::kind, ttmem::test::any_of<ttmem::AllocKind>()),
                            gen::set(&Leak::id), gen::set(&Leak::size), gen::set(&Leak::address),
                            gen::set(&Leak::site, text()), gen::set(&Leak::age_ms), gen::set(&Leak::time_ns),
                            gen::set(&Leak::swept_by_close), gen::set(&Leak::after_oom));
  }
};

template <>
struct Arbitrary<ttmem::views::Orphan> {
  static Gen<ttmem::views::Orphan> arbitrary() {
    using namespace ttmem::views;
    using ttmem::test::text;
    auto held = gen::build<Orphan::Held>(gen::set(&Orphan::Held::device),
                                         gen::set(&Orphan::Held::slot, ttmem::test::any_of<ttmem::Slot>()),
                                         gen::set(&Orphan::Held::bytes), gen::set(&Orphan::Held::buffers));
    return gen::build<Orphan>(gen::set(&Orphan::pid), gen::set(&Orphan::name, text()),
                              gen::set(&Orphan::time_ns),
                              gen::set(&Orphan::held, gen::container<std::vector<Orphan::Held>>(held)),
                              gen::set(&Orphan::bytes), gen::set(&Orphan::buffers),
                              gen::set(&Orphan::messages, gen::container<std::vector<std::string>>(text())));
  }
};

template <>
struct Arbitrary<ttmem::views::Leaks> {
  static Gen<ttmem::views::Leaks> arbitrary() {
    using namespace ttmem::views;
    return gen::build<Leaks>(gen::set(&Leaks::leaks), gen::set(&Leaks::orphans));
  }
};

template <>
struct Arbitrary<ttmem::views::EventRow> {
  static Gen<ttmem::views::EventRow> arbitrary() {
    using namespace ttmem::views;
    using ttmem::test::text;
    return gen::build<EventRow>(
        gen::set(&EventRow::op, ttmem::test::any_of<ttmem::EventOp>()), gen::set(&EventRow::pid),
        gen::set(&EventRow::name, text()), gen::set(&EventRow::device),
        gen::set(&EventRow::type, ttmem::test::any_of<ttmem::BufferType>()),
        gen::set(&EventRow::kind, ttmem::test::any_of<ttmem::AllocKind>()), gen::set(&EventRow::id),
        gen::set(&EventRow::size), gen::set(&EventRow::address), gen::set(&EventRow::site, text()),
        gen::set(&EventRow::internal), gen::set(&EventRow::num_banks), gen::set(&EventRow::size_per_bank),
        gen::set(&EventRow::mesh), gen::set(&EventRow::timestamp_ns), gen::set(&EventRow::time_ns),
        gen::set(&EventRow::reason, ttmem::test::maybe(ttmem::test::any_of<ttmem::ReleaseReason>())));
  }
};

template <>
struct Arbitrary<ttmem::views::EventList> {
  static Gen<ttmem::views::EventList> arbitrary() {
    using namespace ttmem::views;
    return gen::build<EventList>(gen::set(&EventList::events));
  }
};

template <>
struct Arbitrary<ttmem::views::OomRecord> {
  static Gen<ttmem::views::OomRecord> arbitrary() {
    using namespace ttmem::views;
    using ttmem::test::text;
    auto holder = gen::build<OomHolder>(gen::set(&OomHolder::pid), gen::set(&OomHolder::name, text()),
                                        gen::set(&OomHolder::command, text()), gen::set(&OomHolder::bytes),
                                        gen::set(&OomHolder::buffers), gen::set(&OomHolder::per_bank),
                                        gen::set(&OomHolder::internal_per_bank));
    auto buffer = gen::build<OomBuffer>(gen::set(&OomBuffer::pid), gen::set(&OomBuffer::id),
                                        gen::set(&OomBuffer::kind, ttmem::test::any_of<ttmem::AllocKind>()),
                                        gen::set(&OomBuffer::size), gen::set(&OomBuffer::size_per_bank),
                                        gen::set(&OomBuffer::address), gen::set(&OomBuffer::site, text()),
                                        gen::set(&OomBuffer::internal), gen::set(&OomBuffer::age_ms));
    auto block = gen::build<FreeBlock>(gen::set(&FreeBlock::address), gen::set(&FreeBlock::size));
    return gen::build<OomRecord>(
        gen::set(&OomRecord::id), gen::set(&OomRecord::pid), gen::set(&OomRecord::name, text()),
        gen::set(&OomRecord::time_ns), gen::set(&OomRecord::device),
        gen::set(&OomRecord::type, ttmem::test::any_of<ttmem::BufferType>()),
        gen::set(&OomRecord::reason, ttmem::test::any_of<ttmem::FailureReason>()), gen::set(&OomRecord::size),
        gen::set(&OomRecord::page_size), gen::set(&OomRecord::num_banks),
        gen::set(&OomRecord::needed_per_bank), gen::set(&OomRecord::site, text()),
        gen::set(&OomRecord::message, text()),
        gen::set(&OomRecord::space, ttmem::test::maybe(gen::arbitrary<FreeSpace>())),
        gen::set(&OomRecord::free_blocks, gen::container<std::vector<FreeBlock>>(block)),
        gen::set(&OomRecord::holders, gen::container<std::vector<OomHolder>>(holder)),
        gen::set(&OomRecord::largest, gen::container<std::vector<OomBuffer>>(buffer)),
        gen::set(&OomRecord::verdict, ttmem::test::any_of<ttmem::OomVerdict>()),
        gen::set(&OomRecord::summary, text()));
  }
};

template <>
struct Arbitrary<ttmem::views::OomList> {
  static Gen<ttmem::views::OomList> arbitrary() {
    using namespace ttmem::views;
    // A few records, each with small lists: records nest four lists, and a hundred of a hundred each would
    // make one case megabytes of JSON (minutes under the sanitizers) without finding more.
    auto record = gen::resize(20, gen::arbitrary<OomRecord>());
    auto records = gen::mapcat(gen::inRange<std::size_t>(0, 4), [record](std::size_t n) {
      return gen::container<std::vector<OomRecord>>(n, record);
    });
    return gen::build<OomList>(gen::set(&OomList::records, records), gen::set(&OomList::total));
  }
};

template <>
struct Arbitrary<ttmem::views::AddressMap> {
  static Gen<ttmem::views::AddressMap> arbitrary() {
    using namespace ttmem::views;
    using ttmem::test::text;
    // Owner fields travel only with blocks that have an owner, overlap counts only with overlaps.
    auto block = gen::exec([] {
      MapBlock b;
      b.address = *gen::arbitrary<std::uint64_t>();
      b.size = *gen::arbitrary<std::uint64_t>();
      b.use = *ttmem::test::any_of<ttmem::BlockUse>();
      if (b.use == ttmem::BlockUse::buffer || b.use == ttmem::BlockUse::circular_buffer) {
        b.pid = *gen::arbitrary<pid_t>();
        b.id = *gen::arbitrary<std::uint64_t>();
        b.kind = *ttmem::test::any_of<ttmem::AllocKind>();
        b.internal = *gen::arbitrary<bool>();
        b.site = *text();
        b.buffers = 1;
      }
      if (b.use == ttmem::BlockUse::overlap) b.buffers = *gen::arbitrary<std::uint32_t>();
      return b;
    });
    return gen::build<AddressMap>(
        gen::set(&AddressMap::device), gen::set(&AddressMap::type, ttmem::test::any_of<ttmem::BufferType>()),
        gen::set(&AddressMap::base), gen::set(&AddressMap::space),
        gen::set(&AddressMap::blocks, gen::container<std::vector<MapBlock>>(block)),
        gen::set(&AddressMap::circular_buffers, gen::container<std::vector<MapBlock>>(block)),
        gen::set(&AddressMap::overlapping_bytes));
  }
};

template <>
struct Arbitrary<ttmem::views::StreamEvent> {
  static Gen<ttmem::views::StreamEvent> arbitrary() {
    using namespace ttmem::views;
    return gen::oneOf(
        gen::cast<StreamEvent>(gen::arbitrary<EventRow>()), gen::cast<StreamEvent>(gen::arbitrary<Leak>()),
        gen::cast<StreamEvent>(gen::arbitrary<Orphan>()),
        gen::cast<StreamEvent>(gen::resize(20, gen::arbitrary<OomRecord>())),
        gen::map(gen::arbitrary<std::uint64_t>(), [](std::uint64_t n) { return StreamEvent(Dropped{n}); }));
  }
};

template <>
struct Arbitrary<ttmem::views::ServerInfo> {
  static Gen<ttmem::views::ServerInfo> arbitrary() {
    using namespace ttmem::views;
    using ttmem::test::decimal;
    using ttmem::test::text;
    auto stats = gen::exec([] {
      ttmem::proto::ClientStats s;
#define TTMEM_GEN(name) s.name = *gen::arbitrary<std::uint64_t>();
      TTMEM_CLIENT_STATS(TTMEM_GEN)
#undef TTMEM_GEN
      return s;
    });
    auto client = gen::build<ClientInfo>(
        gen::set(&ClientInfo::connection), gen::set(&ClientInfo::pid), gen::set(&ClientInfo::uid),
        gen::set(&ClientInfo::name, text()),
        gen::set(&ClientInfo::role, gen::element<std::string>("tracked", "tool", "handshake")),
        gen::set(&ClientInfo::events), gen::set(&ClientInfo::events_per_second, decimal()),
        gen::set(&ClientInfo::subscriber), gen::set(&ClientInfo::read_buffer_bytes),
        gen::set(&ClientInfo::pending_output_bytes), gen::set(&ClientInfo::connected_s, decimal()),
        gen::set(&ClientInfo::client, ttmem::test::maybe(stats)));
    auto anomalies = gen::exec([] {
      ServerInfo::Anomalies a;
#define TTMEM_GEN(name) a.name = *gen::arbitrary<std::uint64_t>();
      TTMEM_LEDGER_ANOMALIES(TTMEM_GEN)
      TTMEM_SERVER_ANOMALIES(TTMEM_GEN)
#undef TTMEM_GEN
      return a;
    });
    // Limits travel as a JSON object: one value per name, in name order.
    auto limits = gen::map(
        gen::container<std::map<std::string, std::uint64_t>>(text(), gen::arbitrary<std::uint64_t>()),
        [](const std::map<std::string, std::uint64_t>& m) {
          std::vector<NamedValue> out;
          for (const auto& [k, v] : m) out.push_back({k, v});
          return out;
        });
    auto loop = gen::build<ServerInfo::Loop>(gen::set(&ServerInfo::Loop::longest_busy_ms, decimal()),
                                             gen::set(&ServerInfo::Loop::longest_busy_cpu_ms, decimal()),
                                             gen::set(&ServerInfo::Loop::longest_paged_step_ms, decimal()),
                                             gen::set(&ServerInfo::Loop::paged_queries));
    return gen::build<ServerInfo>(
        gen::set(&ServerInfo::version, text()), gen::set(&ServerInfo::protocol), gen::set(&ServerInfo::pid),
        gen::set(&ServerInfo::socket, text()), gen::set(&ServerInfo::uptime_s, decimal()),
        gen::set(&ServerInfo::connections), gen::set(&ServerInfo::processes),
        gen::set(&ServerInfo::clients, gen::container<std::vector<ClientInfo>>(client)),
        gen::set(&ServerInfo::events_total), gen::set(&ServerInfo::events_per_second, decimal()),
        gen::set(&ServerInfo::active_allocations), gen::set(&ServerInfo::registry_bytes),
        gen::set(&ServerInfo::oom_records), gen::set(&ServerInfo::death_watch, text()),
        gen::set(&ServerInfo::loop, loop), gen::set(&ServerInfo::anomalies, anomalies),
        gen::set(&ServerInfo::limits, limits));
  }
};

template <>
struct Arbitrary<ttmem::views::Query> {
  static Gen<ttmem::views::Query> arbitrary() {
    using namespace ttmem::views;
    // Limits are JSON integers the decoder reads as signed 64-bit.
    auto limit = gen::inRange<std::uint64_t>(0, std::uint64_t{1} << 62);
    auto buffers = gen::build<BufferQuery>(
        gen::set(&BufferQuery::device, ttmem::test::maybe(gen::arbitrary<std::uint16_t>())),
        gen::set(&BufferQuery::pid, ttmem::test::maybe(gen::arbitrary<pid_t>())),
        gen::set(&BufferQuery::type, ttmem::test::maybe(ttmem::test::any_of<ttmem::BufferType>())),
        gen::set(&BufferQuery::kind, ttmem::test::maybe(ttmem::test::any_of<ttmem::AllocKind>())),
        gen::set(&BufferQuery::limit, ttmem::test::maybe(limit)));
    return gen::oneOf(gen::just(Query(StatsQuery{})), gen::cast<Query>(buffers),
                      gen::just(Query(LeaksQuery{})), gen::just(Query(DevicesQuery{})),
                      gen::map(limit, [](std::uint64_t l) { return Query(EventsQuery{l}); }),
                      gen::map(gen::arbitrary<bool>(), [](bool r) { return Query(InfoQuery{r}); }),
                      gen::just(Query(SubscribeQuery{})),
                      gen::map(ttmem::test::maybe(gen::inRange<std::uint64_t>(1, std::uint64_t{1} << 62)),
                               [](std::optional<std::uint64_t> id) { return Query(OomQuery{id}); }),
                      gen::map(gen::pair(gen::arbitrary<std::uint16_t>(),
                                         gen::elementOf(std::vector<ttmem::BufferType>(
                                             ttmem::kManagedTypes.begin(), ttmem::kManagedTypes.end()))),
                               [](std::pair<std::uint16_t, ttmem::BufferType> m) {
                                 return Query(MapQuery{m.first, m.second});
                               }));
  }
};

}  // namespace rc
