// _ttmem: the Python binding of the emulated runtime, of its reporting to ttmemd, and of the query client.
// The pure-Python layer (python/ttmem/__init__.py) adds default sites and the private-server helpers.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "ttmem/history.hpp"
#include "ttmem/query.hpp"
#include "ttmem/replay/report.hpp"
#include "ttmem/runtime/device.hpp"
#include "ttmem/runtime/error.hpp"
#include "ttmem/runtime/server_tracking.hpp"
#include "ttmem/schema.hpp"
#include "ttmem/socket_path.hpp"

namespace py = pybind11;
using namespace ttmem;

namespace {

/// Python exception classes by runtime error code, created at import.
struct Exceptions {
  py::handle base, out_of_memory, cb_clash, invalid_argument, device_closed, device_busy, invalid_state,
      unknown_preset, unreachable, query, capture, history;
};
Exceptions g_exc;

py::handle make_exception(py::module_& m, const char* name, std::initializer_list<py::handle> bases,
                          const char* doc) {
  py::tuple t(bases.size());
  std::size_t i = 0;
  for (auto b : bases) t[i++] = py::reinterpret_borrow<py::object>(b);
  const std::string qualified = std::string("ttmem.") + name;
  PyObject* cls = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, t.ptr(), nullptr);
  m.add_object(name, py::handle(cls));
  return cls;
}

py::handle class_for(emu::ErrorCode code) {
  switch (code) {
    case emu::ErrorCode::out_of_memory:
      return g_exc.out_of_memory;
    case emu::ErrorCode::cb_clash:
      return g_exc.cb_clash;
    case emu::ErrorCode::invalid_argument:
    case emu::ErrorCode::invalid_bank_count:
      return g_exc.invalid_argument;
    case emu::ErrorCode::device_closed:
      return g_exc.device_closed;
    case emu::ErrorCode::device_busy:
      return g_exc.device_busy;
    case emu::ErrorCode::invalid_state:
      return g_exc.invalid_state;
    case emu::ErrorCode::unknown_preset:
      return g_exc.unknown_preset;
  }
  return g_exc.base;
}

emu::BufferType buffer_type(const std::string& name) {
  auto t = parse_enum<emu::BufferType>(name);
  if (!t || *t == emu::BufferType::SYSTEM_MEMORY) {
    throw emu::Error(emu::ErrorCode::invalid_argument,
                     "unknown buffer type '" + name + "' (use " + names_of(kManagedTypes) + ")");
  }
  return *t;
}

py::dict stats_dict(const emu::Statistics& s) {
  py::dict d;
  d["total_allocatable"] = s.total_allocatable_bytes;
  d["allocated"] = s.total_allocated_bytes;
  d["free"] = s.total_free_bytes;
  d["largest_free_block"] = s.largest_free_block_bytes;
  d["largest_free_block_addresses"] = s.largest_free_block_addrs;
  d["num_banks"] = s.num_banks;
  return d;
}

/// Runs a query on a fresh tool connection and returns the answer as Python objects.
py::object run_query(const std::string& request_json, const std::optional<std::string>& socket) {
  const std::string path = socket ? *socket : client::Client::instance().socket_path();
  std::string text;
  {
    py::gil_scoped_release release;
    query::QueryClient q(path);
    text = q.query_text(request_json);
  }
  return py::module_::import("json").attr("loads")(text);
}

/// An OutOfMemoryError with its figures as attributes: what was asked and what was free per bank (the
/// runtime's own numbers), and ttmemd's record of it (id, verdict, summary) when this process is tracked.
void raise_out_of_memory(const emu::Error& e) {
  py::object err = py::reinterpret_borrow<py::object>(g_exc.out_of_memory)(e.what());
  const auto& f = e.figures();
  err.attr("size") = f ? py::object(py::int_(f->size)) : py::none();
  err.attr("num_banks") = f ? py::object(py::int_(f->num_banks)) : py::none();
  err.attr("needed_per_bank") = f ? py::object(py::int_(f->needed_per_bank)) : py::none();
  err.attr("free_per_bank") = f ? py::object(py::int_(f->free_per_bank)) : py::none();
  err.attr("largest_free_block") = f ? py::object(py::int_(f->largest_free_block)) : py::none();
  err.attr("detail") = e.detail().empty() ? py::none() : py::object(py::str(e.detail()));
  err.attr("record_id") = py::none();
  err.attr("verdict") = py::none();
  err.attr("summary") = py::none();
  err.attr("op") = py::none();
  if (emu::ServerTracking::active()) {
    try {
      // The failure went out like a device open: once flushed, ttmemd has made its record.
      std::optional<views::OomRecord> mine;
      {
        py::gil_scoped_release release;
        if (emu::ServerTracking::flush(std::chrono::seconds(2))) {
          query::QueryClient q(client::Client::instance().socket_path());
          const std::uint32_t me = client::Client::instance().server_seen_pid();
          for (auto& r : q.oom().records) {  // newest first
            if (static_cast<std::uint32_t>(r.pid) == me && r.message == e.what()) {
              mine = std::move(r);
              break;
            }
          }
        }
      }
      if (mine) {
        err.attr("record_id") = mine->id;
        err.attr("verdict") = std::string(to_string(mine->verdict));
        err.attr("summary") = mine->summary;
        if (!mine->scope.empty()) err.attr("op") = mine->scope;
      }
    } catch (const std::exception&) {
      // ttmemd went away meanwhile: the error stands without its record.
    }
  }
  PyErr_SetObject(g_exc.out_of_memory.ptr(), err.ptr());
}

}  // namespace

PYBIND11_MODULE(_ttmem, m) {
  m.doc() = "ttmem: the emulated TT-Metal device-memory runtime, tracked by ttmemd.";

  g_exc.base = make_exception(m, "Error", {PyExc_RuntimeError}, "Base class of ttmem errors.");
  g_exc.out_of_memory = make_exception(
      m, "OutOfMemoryError", {g_exc.base, PyExc_MemoryError},
      "An allocator could not place a buffer. Attributes: size, num_banks, needed_per_bank, "
      "free_per_bank, largest_free_block (the runtime's figures), detail (the emulator's note beside "
      "TT-Metal's message, e.g. a mesh's lockstep figures, or None), and ttmemd's record_id, "
      "verdict, summary and op (the op path it was asked in) when the process is tracked (else None).");
  g_exc.cb_clash =
      make_exception(m, "CircularBufferClashError", {g_exc.base},
                     "A program's circular buffers would run into an L1 buffer or past the end of L1.");
  g_exc.invalid_argument =
      make_exception(m, "InvalidArgumentError", {g_exc.base, PyExc_ValueError},
                     "A size, page size, shard count, core range or option is not valid.");
  g_exc.device_closed = make_exception(m, "DeviceClosedError", {g_exc.base}, "The mesh device is closed.");
  g_exc.device_busy =
      make_exception(m, "DeviceBusyError", {g_exc.base},
                     "The devices are already open in this process, or (TTMEM_EMU_CHIP_WAIT=0) another "
                     "process holds a chip.");
  g_exc.invalid_state = make_exception(m, "InvalidStateError", {g_exc.base},
                                       "The object cannot do that now (e.g. a released program).");
  g_exc.unknown_preset = make_exception(m, "UnknownPresetError", {g_exc.base, PyExc_ValueError},
                                        "No mesh preset with that name.");
  g_exc.unreachable = make_exception(m, "ServerUnreachableError", {g_exc.base, PyExc_ConnectionError},
                                     "ttmemd cannot be reached.");
  g_exc.query =
      make_exception(m, "QueryError", {g_exc.base},
                     "ttmemd answered a query with an error (its `code`: bad_query, limit_exceeded, "
                     "internal; None when the connection broke).");

  g_exc.capture = make_exception(m, "CaptureError", {g_exc.base, PyExc_ValueError},
                                 "A ttnn graph capture that cannot be read: the node and what is wrong.");

  g_exc.history =
      make_exception(m, "HistoryError", {g_exc.base},
                     "ttmemd's history cannot be read: no history there, or a bad time or filter.");

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const emu::Error& e) {
      if (e.code() == emu::ErrorCode::out_of_memory) return raise_out_of_memory(e);
      PyErr_SetString(class_for(e.code()).ptr(), e.what());
    } catch (const replay::CaptureError& e) {
      PyErr_SetString(g_exc.capture.ptr(), e.what());
    } catch (const history::HistoryError& e) {
      PyErr_SetString(g_exc.history.ptr(), e.what());
    } catch (const query::ConnectError& e) {
      PyErr_SetString(g_exc.unreachable.ptr(), e.what());
    } catch (const query::QueryError& e) {
      // The server's code rides along as an attribute: "bad_query", "limit_exceeded", "internal", or
      // None when the connection broke.
      py::object err = py::reinterpret_borrow<py::object>(g_exc.query)(e.what());
      err.attr("code") = e.code() ? py::object(py::str(std::string(to_string(*e.code())))) : py::none();
      PyErr_SetObject(g_exc.query.ptr(), err.ptr());
    }
  });

  py::class_<emu::Device>(m, "Device", "One device of a mesh (physical id 0..N-1).")
      .def_property_readonly("id", [](const emu::Device& d) { return d.id().value; })
      .def_property_readonly("arch",
                             [](const emu::Device& d) { return std::string(emu::to_string(d.arch())); })
      .def_property_readonly("is_initialized", &emu::Device::is_initialized)
      .def(
          "statistics",
          [](const emu::Device& d, const std::string& type) {
            return stats_dict(d.allocator().statistics(buffer_type(type)));
          },
          py::arg("buffer_type"),
          "Allocator statistics of one memory type, per bank: total_allocatable, allocated, free, "
          "largest_free_block (bytes).")
      .def(
          "memory_blocks",
          [](const emu::Device& d, const std::string& type) {
            py::list out;
            for (const auto& b : d.allocator().memory_blocks(buffer_type(type))) {
              out.append(py::make_tuple(b.address, b.size, b.allocated));
            }
            return out;
          },
          py::arg("buffer_type"), "The allocator's block table: (address, size, allocated) per block.")
      .def("__repr__", [](const emu::Device& d) {
        return "<ttmem.Device " + std::to_string(d.id().value) + " " + std::string(emu::to_string(d.arch())) +
               ">";
      });

  py::class_<emu::MeshBuffer, std::shared_ptr<emu::MeshBuffer>>(
      m, "Buffer",
      "A buffer replicated on every device of a mesh. Freed by deallocate() or garbage collection.")
      .def_property_readonly("address", &emu::MeshBuffer::address)
      .def_property_readonly("size", &emu::MeshBuffer::size)
      .def_property_readonly("page_size", &emu::MeshBuffer::page_size)
      .def_property_readonly("buffer_type",
                             [](const emu::MeshBuffer& b) { return std::string(emu::to_string(b.type())); })
      .def_property_readonly("kind",
                             [](const emu::MeshBuffer& b) { return std::string(emu::to_string(b.kind())); })
      .def_property_readonly("site", &emu::MeshBuffer::site)
      .def_property_readonly("is_allocated", &emu::MeshBuffer::is_allocated)
      .def_property_readonly(
          "ids",
          [](const emu::MeshBuffer& b) {
            std::vector<std::uint64_t> ids;
            for (std::size_t d = 0; d < b.num_devices(); ++d)
              ids.push_back(b.device_buffer(d)->unique_id().value);
            return ids;
          },
          "Process-unique id of the buffer on each device (what ttmemd keys it by).")
      .def("deallocate", &emu::MeshBuffer::deallocate,
           "Frees it on every device. Idempotent; does nothing once the mesh is closed.")
      .def("__repr__", [](const emu::MeshBuffer& b) {
        return "<ttmem.Buffer " + std::string(emu::to_string(b.type())) + " " + std::to_string(b.size()) +
               " B at " + std::to_string(b.address()) + (b.is_allocated() ? "" : " (deallocated)") + ">";
      });

  py::class_<emu::Program, std::shared_ptr<emu::Program>>(m, "Program", "A program with circular buffers.")
      .def_property_readonly("name", &emu::Program::name)
      .def_property_readonly("state",
                             [](const emu::Program& p) {
                               switch (p.state()) {
                                 case emu::ProgramState::created:
                                   return "created";
                                 case emu::ProgramState::compiled:
                                   return "compiled";
                                 case emu::ProgramState::released:
                                   return "released";
                               }
                               return "?";
                             })
      .def_property_readonly(
          "circular_buffers",
          [](const emu::Program& p) {
            py::list out;
            for (const auto& cb : p.circular_buffers()) {
              py::dict d;
              d["device"] = cb.device.value;
              d["index"] = cb.index;
              d["address"] = cb.address;
              d["size"] = cb.size;
              d["cores"] = cb.cores.str();
              d["num_cores"] = cb.cores.num_cores();
              out.append(d);
            }
            return out;
          },
          "Placed circular buffers on every device (empty until the program runs).")
      .def("release", &emu::Program::release,
           "Destroys the program: its circular buffers are freed, one by one.");

  py::class_<emu::MeshDevice, std::shared_ptr<emu::MeshDevice>>(m, "MeshDevice", "An open mesh of devices.")
      .def_property_readonly("id", [](const emu::MeshDevice& md) { return md.id().value; })
      .def_property_readonly("preset", &emu::MeshDevice::preset)
      .def_property_readonly("shape",
                             [](const emu::MeshDevice& md) { return py::make_tuple(md.rows(), md.cols()); })
      .def_property_readonly("arch",
                             [](const emu::MeshDevice& md) { return std::string(emu::to_string(md.arch())); })
      .def_property_readonly("num_devices", &emu::MeshDevice::num_devices)
      .def_property_readonly("is_open", &emu::MeshDevice::is_open)
      .def_property_readonly(
          "devices",
          [](emu::MeshDevice& md) {
            py::list out;
            for (std::size_t i = 0; i < md.num_devices(); ++i) {
              out.append(py::cast(&md.device(i), py::return_value_policy::reference_internal, py::cast(&md)));
            }
            return out;
          })
      .def(
          "_allocate",
          [](emu::MeshDevice& md, const std::string& type, std::uint64_t size,
             std::optional<std::uint64_t> page_size, std::optional<std::uint32_t> shard_cores,
             const std::string& site) {
            emu::BufferConfig c;
            c.type = buffer_type(type);
            c.size = size;
            c.page_size = page_size.value_or(size >= 2048 && size % 2048 == 0 ? 2048 : size);
            c.shard_cores = shard_cores;
            c.site = site;
            return md.create_buffer(c);
          },
          py::arg("buffer_type"), py::arg("size"), py::arg("page_size"), py::arg("shard_cores"),
          py::arg("site"))
      .def(
          "_create_program",
          [](emu::MeshDevice& md, const std::vector<std::uint64_t>& cb_sizes,
             const std::vector<std::optional<std::string>>& core_ranges, std::optional<std::uint32_t> cores,
             const std::string& name, std::uint64_t kernel_binary_size) {
            emu::ProgramConfig p;
            p.name = name;
            p.kernel_binary_size = kernel_binary_size;
            const emu::CoreRangeSet first =
                cores ? ttmem::first_cores(*cores, md.device(0).spec().worker_grid_x) : emu::CoreRangeSet{};
            for (std::size_t i = 0; i < cb_sizes.size(); ++i) {
              emu::CoreRangeSet set = first;
              if (i < core_ranges.size() && core_ranges[i]) {
                std::string error;
                auto parsed = ttmem::parse_core_range_set(*core_ranges[i], &error);
                if (!parsed) throw emu::Error(emu::ErrorCode::invalid_argument, error);
                set = std::move(*parsed);
              }
              p.circular_buffers.push_back({cb_sizes[i], std::move(set)});
            }
            return md.create_program(p);
          },
          py::arg("cb_sizes"), py::arg("core_ranges"), py::arg("cores"), py::arg("name"),
          py::arg("kernel_binary_size"))
      .def("run", &emu::MeshDevice::run, py::arg("program"),
           "Runs a program on every device: places its circular buffers, caches its kernel binary.")
      .def("clear_program_cache", &emu::MeshDevice::clear_program_cache,
           "Frees kernel binaries and the circular buffers of cached programs.")
      .def("close", &emu::MeshDevice::close,
           "TT-Metal's close sequence; buffers still held are reported as leaks.");

  m.def(
      "_open_mesh_device",
      [](const std::string& preset, std::optional<std::string> arch, std::uint64_t l1_small_size,
         std::uint64_t trace_region_size, std::uint64_t worker_l1_size, std::vector<std::uint32_t> device_ids,
         std::uint32_t allocation_alignment, std::uint32_t grid_x, std::uint32_t grid_y,
         std::uint64_t l1_unreserved_base) {
        emu::ServerTracking::enable();
        emu::MeshDeviceConfig c;
        c.preset = preset;
        if (arch) {
          c.arch = parse_enum<emu::Arch>(*arch);
          if (!c.arch) throw emu::Error(emu::ErrorCode::invalid_argument, "unknown arch '" + *arch + "'");
        }
        c.options.l1_small_size = l1_small_size;
        c.options.trace_region_size = trace_region_size;
        c.options.worker_l1_size = worker_l1_size;
        c.options.allocation_alignment = allocation_alignment;
        c.options.worker_grid_x = grid_x;
        c.options.worker_grid_y = grid_y;
        c.options.l1_unreserved_base = l1_unreserved_base;
        c.device_ids = std::move(device_ids);
        // Opening may wait for a chip another process holds (as TT-Metal does): other threads run meanwhile.
        py::gil_scoped_release release;
        return emu::MeshDevice::open(c);
      },
      py::arg("preset"), py::arg("arch"), py::arg("l1_small_size"), py::arg("trace_region_size"),
      py::arg("worker_l1_size"), py::arg("device_ids"), py::arg("allocation_alignment"), py::arg("grid_x"),
      py::arg("grid_y"), py::arg("l1_unreserved_base"));

  m.def(
      "flush",
      [](double timeout) {
        py::gil_scoped_release release;
        emu::ServerTracking::enable(std::chrono::milliseconds(0));
        return emu::ServerTracking::flush(std::chrono::milliseconds(static_cast<long>(timeout * 1000)));
      },
      py::arg("timeout") = 5.0,
      "Waits until ttmemd has applied everything reported so far. False when not connected or on timeout.");
  m.def(
      "tracking_active", [] { return emu::ServerTracking::active(); }, "True when connected to ttmemd.");
  m.def(
      "_push_op", [](const std::string& name) { return client::Client::instance().push_op(name); },
      py::arg("name"), "Enters op `name` on this thread (ttmem.op is the context manager).");
  m.def(
      "_pop_op", [] { client::Client::instance().pop_op(); }, "Leaves this thread's innermost op.");
  m.def(
      "use_server",
      [](const std::string& socket, double wait) {
        py::gil_scoped_release release;
        emu::ServerTracking::enable(std::chrono::milliseconds(0));
        return client::Client::instance().set_socket_path(
            socket, std::chrono::milliseconds(static_cast<long>(wait * 1000)));
      },
      py::arg("socket"), py::arg("wait") = 5.0,
      "Reports to the ttmemd at `socket` from now on; True when connected.");
  m.def(
      "socket_path", [] { return client::Client::instance().socket_path(); },
      "The socket tracking reports to.");
  m.def(
      "default_socket_path", [] { return ttmem::client_socket_path(); },
      "Where clients connect unless told otherwise: $TTMEM_SOCKET, else your own ttmemd's socket, else the "
      "host service's (/run/ttmem/ttmemd.sock).");
  m.def(
      "client_counters",
      [] {
        const auto c = client::Client::instance().counters();
        py::dict d;
#define TTMEM_ITEM(name) d[#name] = c.name;
        TTMEM_CLIENT_STATS(TTMEM_ITEM)
#undef TTMEM_ITEM
        d["flushes"] = c.flushes;
        d["send_cycles"] = c.send_cycles;
        d["connected"] = c.connected;
        return d;
      },
      "libttmem's counters for this process.");
  m.def("_query", [](const std::string& json_text, std::optional<std::string> socket) {
    return run_query(json_text, socket);
  });
  m.def(
      "_capture_report",
      [](std::optional<std::string> text, std::optional<std::string> path, const std::string& name,
         bool check, std::optional<std::string> arch) {
        replay::ReplayOptions options;
        if (arch) {
          options.arch = parse_enum<Arch>(*arch);
          if (!options.arch) {
            throw emu::Error(emu::ErrorCode::invalid_argument,
                             "unknown arch '" + *arch + "' (one of: " + names_of(enum_values<Arch>()) + ")");
          }
        }
        const replay::Capture capture =
            path ? replay::read_capture(*path) : replay::parse_capture(*text, name);
        std::optional<replay::AddressCheckOptions> with_check;
        if (check) with_check.emplace();
        std::string json;
        {
          py::gil_scoped_release unlocked;  // a large capture takes seconds
          json = replay::offline_report_json(capture, options, with_check);
        }
        return json;
      },
      py::arg("text"), py::arg("path"), py::arg("name"), py::arg("check"), py::arg("arch"));
  // The history on disk (docs/history.md): the same readers as `ttmem history`, `timeline` and `export`.
  const auto state_dir_of = [](const std::optional<std::string>& dir) {
    return dir ? *dir : history::default_state_dir();
  };
  const auto time_of = [](const std::optional<std::string>& text, std::uint64_t otherwise) {
    if (!text) return otherwise;
    auto t = history::parse_time(*text, realtime_ns());
    if (!t) throw history::HistoryError("'" + *text + "' is not a time: give " + history::kTimeForms);
    return *t;
  };
  m.def("_history", [=](std::optional<std::string> state_dir, std::optional<std::string> since,
                        std::optional<std::string> until, std::optional<int> device, std::optional<int> pid,
                        std::string site, std::string op, std::vector<std::string> kinds, std::size_t limit) {
    history::RecordFilter f;
    f.since_ns = time_of(since, 0);
    f.until_ns = time_of(until, UINT64_MAX);
    if (device) f.device = static_cast<std::uint16_t>(*device);
    if (pid) f.pid = *pid;
    f.site = std::move(site);
    f.op = std::move(op);
    f.limit = limit;
    for (const auto& k : kinds) {
      auto kind = parse_enum<HistoryKind>(k);
      if (!kind)
        throw history::HistoryError("unknown kind '" + k +
                                    "' (one of: " + names_of(enum_values<HistoryKind>()) + ")");
      f.kinds.push_back(*kind);
    }
    return schema::to_json(history::Reader(state_dir_of(state_dir)).records(f));
  });
  m.def("_timeline",
        [=](std::optional<std::string> state_dir, int device, std::optional<std::string> since,
            std::optional<std::string> until, std::optional<std::string> slot, bool per_process) {
          history::TimelineQuery q;
          q.device = static_cast<std::uint16_t>(device);
          q.since_ns = time_of(since, realtime_ns() - 3600 * history::kSecondNs);
          q.until_ns = time_of(until, UINT64_MAX);
          q.per_process = per_process;
          if (slot) {
            q.slot = parse_enum<Slot>(*slot);
            if (!q.slot)
              throw history::HistoryError("unknown memory type '" + *slot +
                                          "' (one of: " + names_of(enum_values<Slot>()) + ")");
          }
          return schema::to_json(history::Reader(state_dir_of(state_dir)).timeline(q));
        });
  m.def("_export",
        [=](std::optional<std::string> state_dir, const std::string& format, std::optional<std::string> since,
            std::optional<std::string> until, std::optional<int> device) {
          history::ExportWindow w;
          w.since_ns = time_of(since, realtime_ns() - 3600 * history::kSecondNs);
          w.until_ns = time_of(until, UINT64_MAX);
          if (device) w.device = static_cast<std::uint16_t>(*device);
          const history::Reader reader(state_dir_of(state_dir));
          return format == "perfetto" ? history::perfetto_trace(reader, w)
                                      : history::memory_viz_snapshot(reader, w);
        });
  m.def(
      "presets",
      [] {
        py::list out;
        for (const auto& p : emu::mesh_presets()) {
          out.append(
              py::make_tuple(std::string(p.name), std::string(emu::to_string(p.arch)), p.rows, p.cols));
        }
        return out;
      },
      "The mesh presets: (name, arch, rows, cols).");
}
