package ingest

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// ParsePrefixes parses a comma-separated list of networks in CIDR notation,
// such as "52.1.0.0/16, 2600:1f18::/36". A bare address is a network of
// that one address (a /32 or /128). An empty string returns an empty list.
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var prefixes []netip.Prefix
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var prefix netip.Prefix
		var err error
		if strings.Contains(item, "/") {
			prefix, err = netip.ParsePrefix(item)
		} else {
			var addr netip.Addr
			addr, err = netip.ParseAddr(item)
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		if err != nil {
			return nil, fmt.Errorf("invalid network %q: expected CIDR notation such as 192.0.2.0/24 or an address", item)
		}
		prefixes = append(prefixes, unmapPrefix(prefix.Masked()))
	}
	return prefixes, nil
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix (::ffff:192.0.2.0/120) into
// its IPv4 form, so that it matches the unmapped client addresses.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if !p.Addr().Is4In6() || p.Bits() < 96 {
		return p
	}
	return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
}

// inPrefixes reports whether addr is in one of prefixes.
func inPrefixes(addr netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientAddr returns the address of the client that sent r. It is the
// connection's peer unless the peer is a trusted proxy. Then it is the
// right-most X-Forwarded-For entry that is not itself a trusted proxy,
// because entries to the left of it were written by the client and can be
// forged. It returns the zero Addr when the peer or that entry cannot be
// parsed.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := peer.Addr().Unmap()
	if len(trusted) == 0 || !inPrefixes(addr, trusted) {
		return addr
	}
	entries := forwardedFor(r.Header.Values("X-Forwarded-For"))
	for i := len(entries) - 1; i >= 0; i-- {
		hop, ok := parseHop(entries[i])
		if !ok {
			return netip.Addr{}
		}
		addr = hop.Unmap()
		if !inPrefixes(addr, trusted) {
			return addr
		}
	}
	// Every hop is a trusted proxy: the left-most one sent the request.
	return addr
}

// parseHop parses one X-Forwarded-For entry: an address, or an address
// and port as some load balancers write it ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseHop(entry string) (netip.Addr, bool) {
	if addr, err := netip.ParseAddr(entry); err == nil {
		return addr, true
	}
	if addrPort, err := netip.ParseAddrPort(entry); err == nil {
		return addrPort.Addr(), true
	}
	return netip.Addr{}, false
}

// forwardedFor splits X-Forwarded-For header lines into their entries, in
// order, without blanks. Proxies that send several header lines mean the
// same list as one comma-separated line.
func forwardedFor(lines []string) []string {
	var entries []string
	for _, line := range lines {
		for entry := range strings.SplitSeq(line, ",") {
			if entry = strings.TrimSpace(entry); entry != "" {
				entries = append(entries, entry)
			}
		}
	}
	return entries
}
