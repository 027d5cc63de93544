#include "filter/core/filter_state.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace tcpsteer {
namespace {

// Golden encodings made by `protoc --encode` from tests/fixtures/set_envoy_filter_state.proto
// (tests/fixtures/golden/*.txt are the inputs; the golden_vectors_match_protoc test re-runs
// protoc).
std::string readGolden(const std::string& name) {
  std::ifstream file(std::string(TCPSTEER_FIXTURES) + "/golden/" + name + ".bin", std::ios::binary);
  EXPECT_TRUE(file) << name;
  std::stringstream bytes;
  bytes << file.rdbuf();
  return bytes.str();
}

TEST(FilterState, MatchesProtocGoldenVectors) {
  EXPECT_EQ(encodeSetEnvoyFilterStateArguments(kTcpProxyClusterKey,
                                               "outbound|443||egress1.default.svc.cluster.local"),
            readGolden("istio_443"));
  EXPECT_EQ(encodeSetEnvoyFilterStateArguments(kTcpProxyClusterKey, "egress2"),
            readGolden("standalone"));
  EXPECT_EQ(encodeSetEnvoyFilterStateArguments(kTcpProxyClusterKey, "outbound|443||example.com",
                                               LifeSpan::kDownstreamConnection),
            readGolden("connection_span"));
  EXPECT_EQ(encodeSetEnvoyFilterStateArguments(kTcpProxyClusterKey, std::string(200, 'c')),
            readGolden("long_value"));
}

// The in-place encoder of the per-connection path writes the protoc bytes too, up to the longest
// cluster name a template can render (a two-byte length).
TEST(FilterState, InPlaceEncoderMatchesGoldenVectors) {
  auto encoded = [](std::string_view cluster) {
    FilterStateArguments arguments;
    encodeTcpProxyCluster(cluster, arguments);
    return std::string(arguments.view());
  };
  EXPECT_EQ(encoded("outbound|443||egress1.default.svc.cluster.local"), readGolden("istio_443"));
  EXPECT_EQ(encoded("egress2"), readGolden("standalone"));
  EXPECT_EQ(encoded(std::string(200, 'c')), readGolden("long_value"));
  std::string longest(kMaxClusterName, 'x');
  EXPECT_EQ(encoded(longest), encodeSetEnvoyFilterStateArguments(kTcpProxyClusterKey, longest));
}

// Fixed buffers cut what does not fit and never write past their capacity.
TEST(FixedText, CutsAtCapacity) {
  FixedText<8> text;
  text += "abc";
  text.appendDecimal(4294967295U);
  EXPECT_EQ(text.view(), "abc42949");
  text += 'z';
  EXPECT_EQ(text.size(), 8U);
  FixedText<12> number;
  number.appendDecimal(0);
  number += ' ';
  number.appendDecimal(65535);
  EXPECT_EQ(number.view(), "0 65535");
}

TEST(FilterState, VarintBoundaries) {
  std::string out;
  appendVarint(out, 127);
  appendVarint(out, 128);
  appendVarint(out, 300);
  EXPECT_EQ(out, std::string("\x7f\x80\x01\xac\x02", 5));
}

}  // namespace
}  // namespace tcpsteer
