// Package sshtest runs an SSH server with pkg/sftp's SFTP subsystem in the
// test process, on loopback: the SFTP peer of unit tests. It can slow
// transfers down and drop every connection, to test reconnects.
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Server is a running SSH/SFTP server.
type Server struct {
	Addr       string // 127.0.0.1:port
	Host       string
	Port       int
	KeyFile    string // the client's private key (OpenSSH PEM)
	KnownHosts string // a known_hosts file naming the server's key
	HostKey    ssh.PublicKey

	ln       net.Listener
	mu       sync.Mutex
	conns    map[net.Conn]bool
	delay    time.Duration
	readOnly bool
	wg       sync.WaitGroup
}

// Options change the server's behaviour.
type Options struct {
	// Handlers, when set, serve SFTP from them (request server) instead of
	// the real file system.
	Handlers *sftp.Handlers
	// Password is accepted besides the client key when set.
	Password string
}

// Start starts a server that accepts the generated client key.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	dir := t.TempDir()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, _ := ssh.NewSignerFromKey(hostPriv)
	clientPub, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	sshClientPub, _ := ssh.NewPublicKey(clientPub)
	block, err := ssh.MarshalPrivateKey(clientPriv, "sshtest client")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{KeyFile: filepath.Join(dir, "id_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts"), HostKey: hostSigner.PublicKey(), conns: map[net.Conn]bool{}}
	os.WriteFile(s.KeyFile, pem.EncodeToMemory(block), 0o600)
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(sshClientPub.Marshal()) {
				return nil, nil
			}
			return nil, errDenied
		},
	}
	if opt.Password != "" {
		cfg.PasswordCallback = func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if string(pw) == opt.Password {
				return nil, nil
			}
			return nil, errDenied
		}
	}
	cfg.AddHostKey(hostSigner)
	s.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = s.ln.Addr().String()
	s.Host = "127.0.0.1"
	s.Port = s.ln.Addr().(*net.TCPAddr).Port
	os.WriteFile(s.KnownHosts, []byte(knownhosts.Line([]string{s.Addr}, s.HostKey)+"\n"), 0o600)
	go s.serve(cfg, opt)
	t.Cleanup(s.Close)
	return s
}

type denied struct{}

func (denied) Error() string { return "denied" }

var errDenied = denied{}

// Close stops the server and drops its connections.
func (s *Server) Close() {
	s.ln.Close()
	s.DropAll()
}

// DropAll closes every open connection, as a server restart or a network
// cut would.
func (s *Server) DropAll() {
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}

// Connections returns how many connections are open.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// SetDelay slows every SFTP packet the server sends by d.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

func (s *Server) serve(cfg *ssh.ServerConfig, opt Options) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		go func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			_, chans, reqs, err := ssh.NewServerConn(c, cfg)
			if err != nil {
				return
			}
			go ssh.DiscardRequests(reqs)
			for nc := range chans {
				if nc.ChannelType() != "session" {
					nc.Reject(ssh.UnknownChannelType, "session only")
					continue
				}
				ch, creqs, err := nc.Accept()
				if err != nil {
					return
				}
				go func() {
					for r := range creqs {
						ok := r.Type == "subsystem" && len(r.Payload) > 4 && string(r.Payload[4:]) == "sftp"
						r.Reply(ok, nil)
						if !ok {
							continue
						}
						rw := &slow{ReadWriteCloser: ch, s: s}
						if opt.Handlers != nil {
							srv := sftp.NewRequestServer(rw, *opt.Handlers)
							srv.Serve()
							srv.Close()
						} else if srv, err := sftp.NewServer(rw); err == nil {
							srv.Serve()
							srv.Close()
						}
						ch.Close()
					}
				}()
			}
		}()
	}
}

type slow struct {
	io.ReadWriteCloser
	s *Server
}

func (w *slow) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	d := w.s.delay
	w.s.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
	return w.ReadWriteCloser.Write(p)
}
