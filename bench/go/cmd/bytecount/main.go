// Command bytecount is a TCP relay that counts what clients send: the
// mirror benchmark (bench/mirror.py) puts it in front of the local ECR's
// data plane so that the bytes each copy tool uploads are measured at the
// registry side, the same way for every tool, whatever the tool reports.
//
//	bytecount -listen 127.0.0.1:0 -to 127.0.0.1:5000 -addr-file F
//
// It writes the address it listens on to F, then relays every connection
// to -to. On SIGTERM or SIGINT it prints one JSON line to stdout,
// {"sent": N, "received": M, "connections": C}: N bytes from clients to
// the registry (request lines, headers and bodies), M back, and exits.
// Counts are added as bytes pass (256 KiB reads), so a connection still
// open when the relay stops is counted too.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

type counters struct {
	sent        atomic.Int64
	received    atomic.Int64
	connections atomic.Int64
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	to := flag.String("to", "", "address to relay to (host:port)")
	addrFile := flag.String("addr-file", "", "file to write the listening address to")
	flag.Parse()
	if *to == "" {
		log.Fatal("bytecount: -to is required")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("bytecount: %v", err)
	}
	if *addrFile != "" {
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ln.Addr().String()), 0o644); err != nil {
			log.Fatalf("bytecount: %v", err)
		}
		if err := os.Rename(tmp, *addrFile); err != nil {
			log.Fatalf("bytecount: %v", err)
		}
	}
	var c counters
	go accept(ln, *to, &c)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	out, _ := json.Marshal(map[string]int64{
		"sent":        c.sent.Load(),
		"received":    c.received.Load(),
		"connections": c.connections.Load(),
	})
	os.Stdout.Write(append(out, '\n'))
}

func accept(ln net.Listener, to string, c *counters) {
	for {
		client, err := ln.Accept()
		if err != nil {
			log.Printf("bytecount: accept: %v", err)
			return
		}
		c.connections.Add(1)
		go relay(client, to, c)
	}
}

func relay(client net.Conn, to string, c *counters) {
	defer client.Close()
	server, err := net.Dial("tcp", to)
	if err != nil {
		log.Printf("bytecount: dial %s: %v", to, err)
		return
	}
	defer server.Close()
	done := make(chan struct{})
	go func() {
		pump(server, client, &c.sent)
		if tcp, ok := server.(*net.TCPConn); ok {
			tcp.CloseWrite()
		}
		close(done)
	}()
	pump(client, server, &c.received)
	if tcp, ok := client.(*net.TCPConn); ok {
		tcp.CloseWrite()
	}
	<-done
}

// pump copies src to dst until either ends, adding what passes to count.
func pump(dst io.Writer, src io.Reader, count *atomic.Int64) {
	buf := make([]byte, 256<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			count.Add(int64(n))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
