package redistest

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return &net.AddrError{Err: "unexpected reply " + line, Addr: addr}
	}
	return nil
}

func TestKillAndRestart(t *testing.T) {
	s := Start(t)
	if err := ping(s.Addr()); err != nil || !s.Running() {
		t.Fatalf("started: %v", err)
	}
	s.Kill()
	if s.Running() || ping(s.Addr()) == nil {
		t.Fatal("still answering after Kill")
	}
	s.Restart()
	if err := ping(s.Addr()); err != nil || !s.Running() {
		t.Fatalf("after Restart: %v", err)
	}
	s.Stop()
	s.Stop()
	if s.Running() || ping(s.Addr()) == nil {
		t.Fatal("still answering after Stop")
	}
	s.Restart()
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("after Stop and Restart: %v", err)
	}
}
