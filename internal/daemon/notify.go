package daemon

import (
	"net"
	"strings"
)

// Notify sends state to systemd (sd_notify(3): "READY=1", "STATUS=...", "STOPPING=1") on the
// datagram socket NOTIFY_SOCKET names; without one (not started by systemd with
// Type=notify) it does nothing. An address starting with '@' is in the abstract namespace.
func Notify(getenv func(string) string, state ...string) error {
	addr := getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(strings.Join(state, "\n")))
	return err
}
