#include "filter/core/address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tcpsteer {
namespace {

TEST(ParseSocketAddress, Ipv4WithPort) {
  auto address = parseSocketAddress("10.244.0.12:45678");
  ASSERT_TRUE(address);
  EXPECT_EQ(address->ip.family, IpFamily::kV4);
  EXPECT_EQ(address->ip.lastOctet(), 12);
  ASSERT_TRUE(address->port);
  EXPECT_EQ(*address->port, 45678);
}

TEST(ParseSocketAddress, Ipv6WithPortLastByte) {
  auto address = parseSocketAddress("[2001:db8::1:ff]:443");
  ASSERT_TRUE(address);
  EXPECT_EQ(address->ip.family, IpFamily::kV6);
  EXPECT_EQ(address->ip.lastOctet(), 0xff);
  EXPECT_EQ(*address->port, 443);
}

TEST(ParseSocketAddress, WithoutPort) {
  auto v4 = parseSocketAddress("192.168.1.7");
  ASSERT_TRUE(v4);
  EXPECT_FALSE(v4->port);
  EXPECT_EQ(v4->ip.lastOctet(), 7);
  auto v6 = parseSocketAddress("fd00::3");
  ASSERT_TRUE(v6);
  EXPECT_FALSE(v6->port);
  EXPECT_EQ(v6->ip.lastOctet(), 3);
  auto bracketed = parseSocketAddress("[fd00::4]");
  ASSERT_TRUE(bracketed);
  EXPECT_EQ(bracketed->ip.lastOctet(), 4);
}

TEST(ParseSocketAddress, Ipv4MappedIpv6BecomesIpv4) {
  auto address = parseSocketAddress("[::ffff:10.1.2.3]:8080");
  ASSERT_TRUE(address);
  EXPECT_EQ(address->ip.family, IpFamily::kV4);
  EXPECT_EQ(address->ip.lastOctet(), 3);
  EXPECT_EQ(address->ip, parseIp("10.1.2.3").value());
  auto hex_form = parseIp("::ffff:a01:203");
  ASSERT_TRUE(hex_form);
  EXPECT_EQ(*hex_form, parseIp("10.1.2.3").value());
}

TEST(ParseSocketAddress, ZoneIsIgnored) {
  auto address = parseSocketAddress("[fe80::1%eth0]:22");
  ASSERT_TRUE(address);
  EXPECT_EQ(address->ip.lastOctet(), 1);
  EXPECT_FALSE(parseSocketAddress("10.0.0.1%eth0:80"));
  EXPECT_FALSE(parseSocketAddress("[fe80::1%]:22"));
}

TEST(ParseSocketAddress, RejectsGarbage) {
  const char* bad[] = {
      "",
      ":",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "01.2.3.4",
      "1.2.3.4:",
      "1.2.3.4:65536",
      "1.2.3.4:-1",
      "1.2.3.4:80x",
      "[1.2.3.4]:80",
      "[::1",
      "[::1]x",
      "::1]:80",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      ":::",
      "[::1]:",
      "12345::1",
      "g::1",
      "1.2.3.4 ",
      " 1.2.3.4",
      "pipe:/tmp/sock",
      "envoy://internal",
      "1:2:3:4:5:6:7:1.2.3.4",
      "::1.2.3.4:5",
      "1.2.3.4\n",
  };
  for (const char* text : bad) EXPECT_FALSE(parseSocketAddress(text)) << text;
}

TEST(ParseSocketAddress, RejectsOverLongAndBinary) {
  EXPECT_FALSE(parseSocketAddress(std::string(10000, '1')));
  EXPECT_FALSE(parseSocketAddress(std::string("10.0.0.1\0:80", 12)));
  EXPECT_FALSE(parseSocketAddress("\xff\xfe\x80"));
  EXPECT_FALSE(parseSocketAddress("1\xc3\xa9.2.3.4"));
}

// Our IP parser must agree with the C library's inet_pton on every input it is given (apart from
// the IPv4-mapped normalisation, which only changes the family).
void expectAgreesWithInetPton(const std::string& text) {
  unsigned char buffer[16];
  bool libc_v4 = inet_pton(AF_INET, text.c_str(), buffer) == 1;
  bool libc_v6 = inet_pton(AF_INET6, text.c_str(), buffer) == 1;
  EXPECT_EQ(parseIp(text).has_value(), libc_v4 || libc_v6) << text;
}

// The memo answers as parseSocketAddress whatever came before: repeats, the same address with
// another (or a broken) port, a longer address sharing the remembered text as a prefix.
TEST(AddressMemo, AnswersAsTheParserInAnyOrder) {
  const std::vector<std::string> sequence = {"10.244.0.13:40000",
                                             "10.244.0.13:40001",
                                             "10.244.0.13",
                                             "10.244.0.13:",
                                             "10.244.0.13:4000x",
                                             "10.244.0.13:65535",
                                             "10.244.0.13:65536",
                                             "10.244.0.13:000443",
                                             "10.244.0.13:00443",
                                             "10.244.0.131:1",
                                             "10.244.0.1:3",
                                             "10.244.0.1",
                                             "10.244.0.13:40000",
                                             "[::ffff:10.244.0.13]:1",
                                             std::string("10.244.0.13\0:1", 14),
                                             "fd00::13",
                                             "10.244.0.13:1:2",
                                             "010.244.0.13:1",
                                             "10.244.0.13 ",
                                             ""};
  // Both kinds: the source memo, and the destination memo that also remembers whole texts (each
  // text twice in a row, so the whole-text answer is the one checked the second time).
  for (bool whole : {false, true}) {
    AddressMemo memo(whole);
    for (int round = 0; round < 2; ++round) {
      for (const std::string& text : sequence) {
        for (int repeat = 0; repeat < 3; ++repeat) {
          auto expected = parseSocketAddress(text);
          auto remembered = memo.parse(text);
          ASSERT_EQ(expected.has_value(), remembered.has_value()) << text;
          if (!expected) continue;
          EXPECT_EQ(expected->ip, remembered->ip) << text << " whole=" << whole;
          EXPECT_EQ(expected->port, remembered->port) << text << " whole=" << whole;
        }
      }
    }
  }
}

// A destination that repeats whole is answered from the remembered text; a new address after it,
// of the same length and with the same port, is not given the old address.
TEST(AddressMemo, WholeTextIsNeverStale) {
  AddressMemo memo(/*remember_whole=*/true);
  for (const char* text : {"93.184.216.34:443", "93.184.216.34:443", "93.184.216.34:443",
                           "93.184.216.35:443", "93.184.216.34:443", "93.184.216.35:443",
                           "93.184.216.35:443", "93.184.216.35:444", "93.184.216.35:443"}) {
    auto expected = parseSocketAddress(text);
    auto remembered = memo.parse(text);
    ASSERT_TRUE(expected && remembered) << text;
    EXPECT_EQ(expected->ip, remembered->ip) << text;
    EXPECT_EQ(expected->port, remembered->port) << text;
  }
}

TEST(ParseIp, AgreesWithInetPton) {
  const char* samples[] = {"0.0.0.0",
                           "255.255.255.255",
                           "1.2.3.04",
                           "::",
                           "::1",
                           "1::",
                           "1:2:3:4:5:6:7:8",
                           "1:2:3:4:5:6:7::",
                           "::2:3:4:5:6:7:8",
                           "1::8",
                           "::ffff:1.2.3.4",
                           "::1.2.3.4",
                           "1:2:3:4:5:6:1.2.3.4",
                           "1:2::1.2.3.4",
                           "fFfF::",
                           "1:::2",
                           ":1::",
                           "1::2:",
                           "00000::1",
                           "1.2.3.4.",
                           ".1.2.3.4",
                           "1..2.3",
                           "::ffff:256.1.1.1"};
  for (const char* sample : samples) expectAgreesWithInetPton(sample);
}

TEST(ParsePrefix, MatchesV4AndV6) {
  auto net = parsePrefix("10.244.0.0/16");
  ASSERT_TRUE(net);
  EXPECT_TRUE(net->contains(*parseIp("10.244.7.9")));
  EXPECT_FALSE(net->contains(*parseIp("10.245.0.1")));
  EXPECT_FALSE(net->contains(*parseIp("fd00::1")));
  auto odd_length = parsePrefix("192.168.0.0/23");
  ASSERT_TRUE(odd_length);
  EXPECT_TRUE(odd_length->contains(*parseIp("192.168.1.255")));
  EXPECT_FALSE(odd_length->contains(*parseIp("192.168.2.0")));
  auto v6 = parsePrefix("fd00::/8");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(*parseIp("fd12::1")));
  EXPECT_FALSE(v6->contains(*parseIp("fe80::1")));
  auto everything = parsePrefix("0.0.0.0/0");
  ASSERT_TRUE(everything);
  EXPECT_TRUE(everything->contains(*parseIp("203.0.113.9")));
  auto host = parsePrefix("10.0.0.7");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->length, 32);
  EXPECT_TRUE(parsePrefix("10.1.2.3")->contains(*parseIp("::ffff:10.1.2.3")));
}

// Every prefix length of both families: an address differing from the base in bit b is inside the
// prefix exactly when b is at or past the length (the masked-word compare against the bit rule).
TEST(ParsePrefix, ContainsFollowsTheBitRuleAtEveryLength) {
  for (auto [base_text, bits] : {std::pair<const char*, size_t>{"0.0.0.0", 32}, {"::", 128}}) {
    for (size_t length = 0; length <= bits; ++length) {
      auto prefix = parsePrefix(std::string(base_text) + "/" + std::to_string(length));
      ASSERT_TRUE(prefix) << base_text << "/" << length;
      IpAddress address = prefix->base;
      EXPECT_TRUE(prefix->contains(address));
      for (size_t bit = 0; bit < bits; ++bit) {
        IpAddress flipped = address;
        flipped.bytes[bit / 8] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
        EXPECT_EQ(prefix->contains(flipped), bit >= length)
            << base_text << "/" << length << " bit " << bit;
      }
    }
  }
}

TEST(ParsePrefix, RejectsHostBitsAndBadLengths) {
  for (const char* bad : {"10.1.2.3/8", "10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/08",
                          "10.0.0.0/x", "/8", "::ffff:10.0.0.0/104", "10.0.0.0/8/8"}) {
    EXPECT_FALSE(parsePrefix(bad)) << bad;
  }
}

TEST(ParsePort, Range) {
  EXPECT_EQ(parsePort("0"), 0);
  EXPECT_EQ(parsePort("65535"), 65535);
  EXPECT_FALSE(parsePort("65536"));
  EXPECT_FALSE(parsePort("123456"));
  EXPECT_FALSE(parsePort("+1"));
  EXPECT_FALSE(parsePort(""));
}

// The module reads ports as one word (parsePortWord), the native build by a digit loop
// (parsePort). Both must give the number each digit string of 1 to 5 bytes was written from
// (leading zeros included), and refuse one bad byte at any position (the bytes around '0'..'9' and
// those whose low or high nibble alone looks like a digit), with garbage in the word past the
// digits.
std::optional<uint16_t> portAsWord(std::string_view text) {
  if (text.size() > 8) return std::nullopt;
  uint64_t word = 0x3a2f39ff30b0007fULL;  // past the digits: bytes that must be ignored
  __builtin_memcpy(&word, text.data(), text.size());
  return parsePortWord(word, text.size());
}

TEST(ParsePort, ReadsEveryShortDigitStringAsTheNumberItWasWrittenFrom) {
  for (size_t length = 1; length <= 5; ++length) {
    unsigned limit = 1;
    for (size_t i = 0; i < length; ++i) limit *= 10;
    std::string text(length, '0');
    for (unsigned n = 0; n < limit; ++n) {
      unsigned rest = n;
      for (size_t i = length; i-- > 0; rest /= 10) text[i] = static_cast<char>('0' + rest % 10);
      std::optional<uint16_t> expected;
      if (n <= 65535) expected = static_cast<uint16_t>(n);
      ASSERT_EQ(parsePort(text), expected) << text;
      ASSERT_EQ(portAsWord(text), expected) << text;
    }
  }
}

TEST(ParsePort, RefusesABadByteAtEveryPosition) {
  const unsigned char bad_bytes[] = {0x00, 0x20, 0x2f, 0x3a, 0x3f, 0x40, 0x10, 0x13,
                                     0x70, 0x79, 0xb0, 0xb9, 0xf3, 0xff, 0x03, 0x39 + 0x80};
  for (size_t length = 1; length <= 5; ++length) {
    for (size_t position = 0; position < length; ++position) {
      for (unsigned char bad : bad_bytes) {
        std::string text(length, '1');
        text[position] = static_cast<char>(bad);
        EXPECT_FALSE(parsePort(text))
            << "length " << length << " byte " << int{bad} << " at " << position;
        EXPECT_FALSE(portAsWord(text))
            << "length " << length << " byte " << int{bad} << " at " << position;
      }
    }
  }
}

}  // namespace
}  // namespace tcpsteer
