// The bridge's reports into libttmem: every allocation of the bridge becomes one report to ttmemd, with
// the function stack as its op and the innermost function as its site; the resync callback lists the
// bridge's live picture, so a ttmemd (re)start sees it exactly. Tensor-backed CBs and dataflow buffers
// are not reported (their bytes are the tensor's, already counted).
#pragma once

#include <string>
#include <unordered_map>

#include "ttmem/bridge/bridge.hpp"
#include "ttmem/client.hpp"

namespace ttmem::bridge {

class ClientSink : public Sink {
 public:
  explicit ClientSink(client::Client& client) : client_(client) {}
  /// Makes `bridge`'s live picture the client's resync snapshot. Call once, before events.
  void attach(const Bridge& bridge);

  void chip_added(const ChipInfo& chip) override;
  void allocated(const Allocation& allocation) override;
  void released(const Allocation& allocation, ReleaseReason reason) override;
  void chip_closing(std::uint16_t chip, ClosePhase phase) override;

  static client::AllocationReport to_report(const Allocation& a, client::SiteId site, client::SiteId op);
  static client::DeviceReport to_report(const ChipInfo& chip);

 private:
  client::SiteId intern(std::string_view text);  // called under the bridge's lock
  client::Client& client_;
  std::unordered_map<std::string_view, client::SiteId> ids_;  // keys: the bridge's interned text
};

}  // namespace ttmem::bridge
