package watcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SFTPConfig says how to reach a remote inbox.
type SFTPConfig struct {
	Host string
	Port int
	User string
	// Password, or KeyFile with an optional Passphrase (secrets resolved by
	// the caller, from the environment or files).
	Password   string
	KeyFile    string
	Passphrase string
	// KnownHosts is the known_hosts file the server's key must be in.
	KnownHosts string
	// InsecureIgnoreHostKey skips the check: for tests only; every connect
	// logs a warning.
	InsecureIgnoreHostKey bool
	// Path is the remote inbox folder; work/, done/ and failed/ live in it.
	Path string
	// DialTimeout bounds connecting (default 15s); KeepAlive is the period
	// of keep-alive requests on an idle connection (default 15s).
	DialTimeout time.Duration
	KeepAlive   time.Duration
	Log         zerolog.Logger
}

// SFTP is a remote inbox on an SFTP server: one kept-alive connection,
// re-established with backoff whenever it drops, mid-transfer included.
type SFTP struct {
	cfg     SFTPConfig
	auth    []ssh.AuthMethod
	hostKey ssh.HostKeyCallback

	mu     sync.Mutex
	conn   *ssh.Client
	client *sftp.Client
	gen    int // connection generation, to retire the keep-alive loop
	closed bool
}

// ErrHostKey is wrapped when the server's key is unknown or changed.
var ErrHostKey = errors.New("host key refused")

// NewSFTP checks the settings (key file, known_hosts) without dialling.
func NewSFTP(cfg SFTPConfig) (*SFTP, error) {
	if cfg.Port == 0 {
		cfg.Port = 22
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 15 * time.Second
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	s := &SFTP{cfg: cfg}
	if cfg.KeyFile != "" {
		pem, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("sftp: key file: %w", err)
		}
		var signer ssh.Signer
		if cfg.Passphrase != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(cfg.Passphrase))
		} else {
			signer, err = ssh.ParsePrivateKey(pem)
		}
		if err != nil {
			return nil, fmt.Errorf("sftp: key file %s: %w", cfg.KeyFile, err)
		}
		s.auth = append(s.auth, ssh.PublicKeys(signer))
	}
	if cfg.Password != "" {
		s.auth = append(s.auth, ssh.Password(cfg.Password))
	}
	if len(s.auth) == 0 {
		return nil, errors.New("sftp: no key file and no password")
	}
	if cfg.InsecureIgnoreHostKey {
		s.hostKey = ssh.InsecureIgnoreHostKey()
		return s, nil
	}
	cb, err := knownhosts.New(cfg.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("sftp: known_hosts %s: %w", cfg.KnownHosts, err)
	}
	s.hostKey = func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		fp := ssh.FingerprintSHA256(key)
		if len(ke.Want) == 0 {
			return fmt.Errorf("%w: %s presented an unknown %s key %s, not in %s; if it is the right server, add its key there (for example: ssh-keyscan -p %d %s >> %s)",
				ErrHostKey, hostname, key.Type(), fp, cfg.KnownHosts, cfg.Port, cfg.Host, cfg.KnownHosts)
		}
		var want []string
		for _, w := range ke.Want {
			want = append(want, ssh.FingerprintSHA256(w.Key)+" ("+w.Filename+":"+strconv.Itoa(w.Line)+")")
		}
		return fmt.Errorf("%w: HOST KEY CHANGED for %s: it presented %s %s but %s expects %s; refusing to connect (the server was replaced, or someone is in the middle); change known_hosts only if the key was really replaced",
			ErrHostKey, hostname, key.Type(), fp, cfg.KnownHosts, strings.Join(want, ", "))
	}
	return s, nil
}

// Close drops the connection.
func (s *SFTP) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.dropLocked()
}

func (s *SFTP) dropLocked() {
	if s.client != nil {
		s.client.Close()
	}
	if s.conn != nil {
		s.conn.Close()
	}
	s.client, s.conn = nil, nil
	s.gen++
}

func (s *SFTP) addr() string { return net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port)) }

// connect returns a live client, dialling if there is none.
func (s *SFTP) connect(ctx context.Context) (*sftp.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("sftp: closed")
	}
	if s.client != nil {
		return s.client, nil
	}
	if s.cfg.InsecureIgnoreHostKey {
		s.cfg.Log.Warn().Str("host", s.addr()).Msg("insecure_ignore_host_key is set: the server's identity is NOT checked (tests only)")
	}
	d := net.Dialer{Timeout: s.cfg.DialTimeout, KeepAlive: s.cfg.KeepAlive}
	raw, err := d.DialContext(ctx, "tcp", s.addr())
	if err != nil {
		return nil, fmt.Errorf("sftp: connect %s: %w", s.addr(), err)
	}
	raw.SetDeadline(time.Now().Add(s.cfg.DialTimeout))
	cc, chans, reqs, err := ssh.NewClientConn(raw, s.addr(), &ssh.ClientConfig{
		User: s.cfg.User, Auth: s.auth, HostKeyCallback: s.hostKey, Timeout: s.cfg.DialTimeout,
	})
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("sftp: ssh %s: %w", s.addr(), err)
	}
	raw.SetDeadline(time.Time{})
	conn := ssh.NewClient(cc, chans, reqs)
	client, err := sftp.NewClient(conn, sftp.UseConcurrentReads(true))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("sftp: starting the sftp subsystem on %s: %w", s.addr(), err)
	}
	s.conn, s.client = conn, client
	s.gen++
	go s.keepAlive(conn, s.gen)
	s.cfg.Log.Debug().Str("host", s.addr()).Msg("sftp connected")
	return client, nil
}

// keepAlive pings the server while the connection is idle; a failed ping
// drops the connection so the next use reconnects.
func (s *SFTP) keepAlive(conn *ssh.Client, gen int) {
	t := time.NewTicker(s.cfg.KeepAlive)
	defer t.Stop()
	for range t.C {
		s.mu.Lock()
		current := s.gen == gen && !s.closed
		s.mu.Unlock()
		if !current {
			return
		}
		if _, _, err := conn.SendRequest("keepalive@openssh.com", true, nil); err != nil {
			s.mu.Lock()
			if s.gen == gen {
				s.dropLocked()
			}
			s.mu.Unlock()
			return
		}
	}
}

// isConnErr tells a dropped connection (retry on a new one) from an answer
// of the server or a problem found (a real error): a status from the server
// is an answer; otherwise the connection is asked whether it is alive.
func (s *SFTP) isConnErr(conn *ssh.Client, err error) bool {
	if err == nil {
		return false
	}
	var st *sftp.StatusError
	if errors.As(err, &st) {
		return st.Code == 7 // SSH_FX_CONNECTION_LOST
	}
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) || errors.Is(err, ErrHostKey) {
		return false
	}
	return conn == nil || !alive(conn)
}

// alive sends a keep-alive request and waits a few seconds for the answer.
func alive(conn *ssh.Client) bool {
	ok := make(chan bool, 1)
	go func() {
		_, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
		ok <- err == nil
	}()
	select {
	case v := <-ok:
		return v
	case <-time.After(5 * time.Second):
		return false
	}
}

// do runs fn on a live connection, reconnecting with backoff while the
// connection fails, until ctx ends. Errors of the server (no such file,
// permission denied) and host key refusals end it at once.
func (s *SFTP) do(ctx context.Context, fn func(*sftp.Client) error) error {
	backoff := 200 * time.Millisecond
	for {
		c, err := s.connect(ctx)
		if err == nil {
			err = fn(c)
			s.mu.Lock()
			conn := s.conn
			s.mu.Unlock()
			if err == nil || !s.isConnErr(conn, err) {
				return err
			}
			s.mu.Lock()
			if s.client == c {
				s.dropLocked()
			}
			s.mu.Unlock()
		}
		if errors.Is(err, ErrHostKey) || strings.Contains(err.Error(), "unable to authenticate") {
			return err
		}
		s.cfg.Log.Warn().Str("host", s.addr()).Err(err).Dur("retry_in", backoff).Msg("sftp connection failed; reconnecting")
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (s *SFTP) work() string { return path.Join(s.cfg.Path, "work") }

// validName refuses a remote name that could lead outside the inbox.
func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, "..") {
		return fmt.Errorf("sftp: refusing the remote name %q: it could lead outside the inbox", name)
	}
	return nil
}

// Check verifies, at start, that the remote inbox exists, is a folder and
// can be written to (work/ is created and a probe file written and removed).
func (s *SFTP) Check(ctx context.Context) error {
	return s.do(ctx, func(c *sftp.Client) error {
		st, err := c.Stat(s.cfg.Path)
		if err != nil {
			return fmt.Errorf("sftp: remote inbox %s on %s: %w", s.cfg.Path, s.addr(), err)
		}
		if !st.IsDir() {
			return fmt.Errorf("sftp: remote inbox %s on %s is not a folder", s.cfg.Path, s.addr())
		}
		if err := c.MkdirAll(s.work()); err != nil {
			return fmt.Errorf("sftp: remote inbox %s on %s is not writable (creating work/): %w", s.cfg.Path, s.addr(), err)
		}
		probe := path.Join(s.work(), ".izdrop-probe-"+NewClaimID(time.Now()))
		f, err := c.Create(probe)
		if err != nil {
			return fmt.Errorf("sftp: remote inbox %s on %s is not writable: %w", s.cfg.Path, s.addr(), err)
		}
		f.Close()
		return c.Remove(probe) // izdrop's own probe, not a user's file
	})
}

// List lists the remote inbox's regular files. Links, folders and names
// that could lead elsewhere are left out.
func (s *SFTP) List(ctx context.Context) ([]Entry, error) {
	var out []Entry
	err := s.do(ctx, func(c *sftp.Client) error {
		infos, err := c.ReadDirContext(ctx, s.cfg.Path)
		if err != nil {
			return err
		}
		out = out[:0]
		for _, fi := range infos {
			if validName(fi.Name()) != nil {
				continue
			}
			switch m := fi.Mode(); {
			case m&fs.ModeSymlink != 0:
				out = append(out, Entry{Name: fi.Name(), Kind: "symlink"})
			case m.IsDir():
				out = append(out, Entry{Name: fi.Name(), Kind: "folder"})
			case !m.IsRegular():
				out = append(out, Entry{Name: fi.Name(), Kind: "other"})
			default:
				out = append(out, Entry{Name: fi.Name(), Size: fi.Size(), ModTime: fi.ModTime()})
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		return nil
	})
	return out, err
}

// RemoteClaim is a file claimed into the remote work/ folder.
type RemoteClaim struct {
	ID, Name string
	Path     string // in remote work/
	Markers  []string
	At       time.Time
}

// Claim renames a remote file into the remote work/ folder under a fresh
// claim name; ErrGone when another process took it first.
func (s *SFTP) Claim(ctx context.Context, name, marker string, now time.Time) (RemoteClaim, error) {
	if err := validName(name); err != nil {
		return RemoteClaim{}, err
	}
	id := NewClaimID(now)
	rc := RemoteClaim{ID: id, Name: name, Path: path.Join(s.work(), id+"--"+name), At: now}
	err := s.do(ctx, func(c *sftp.Client) error {
		st, err := c.Lstat(path.Join(s.cfg.Path, name))
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("sftp: %s is not a regular file (a link?): not taken", name)
		}
		if err := c.MkdirAll(s.work()); err != nil {
			return err
		}
		return c.Rename(path.Join(s.cfg.Path, name), rc.Path)
	})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// Gone - possibly renamed by this very call before a dropped
			// connection hid the answer; then WorkFiles finds it.
			return RemoteClaim{}, ErrGone
		}
		return RemoteClaim{}, fmt.Errorf("sftp: claiming %s: %w", name, err)
	}
	for _, m := range MarkerFor(name, marker) {
		dst := path.Join(s.work(), id+"--"+m)
		if s.do(ctx, func(c *sftp.Client) error { return c.Rename(path.Join(s.cfg.Path, m), dst) }) == nil {
			rc.Markers = append(rc.Markers, dst)
		}
	}
	return rc, nil
}

// WorkFiles lists the files in the remote work/ folder, oldest claim first.
func (s *SFTP) WorkFiles(ctx context.Context) ([]RemoteClaim, error) {
	var out []RemoteClaim
	err := s.do(ctx, func(c *sftp.Client) error {
		infos, err := c.ReadDirContext(ctx, s.work())
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		byID := map[string]*RemoteClaim{}
		var markers []string
		for _, fi := range infos {
			if !fi.Mode().IsRegular() {
				continue
			}
			id, name, at, ok := ParseClaimName(fi.Name())
			if !ok || validName(name) != nil {
				continue
			}
			lower := strings.ToLower(name)
			if strings.HasSuffix(lower, ".done") || strings.HasSuffix(lower, ".ready") {
				markers = append(markers, fi.Name())
				continue
			}
			byID[id] = &RemoteClaim{ID: id, Name: name, Path: path.Join(s.work(), fi.Name()), At: at}
		}
		for _, m := range markers {
			id, _, _, _ := ParseClaimName(m)
			if rc, ok := byID[id]; ok {
				rc.Markers = append(rc.Markers, path.Join(s.work(), m))
			}
		}
		out = out[:0]
		for _, rc := range byID {
			out = append(out, *rc)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return nil
	})
	return out, err
}

// Download streams a remote file to local, through local+".part": a
// dropped connection resumes where the part file ends; the part becomes the
// local file only when complete (size checked), so a partial file is never
// processed. Memory use does not depend on the file's size.
func (s *SFTP) Download(ctx context.Context, remote, local string) error {
	part := local + ".part"
	if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
		return err
	}
	return s.do(ctx, func(c *sftp.Client) error {
		st, err := c.Lstat(remote)
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("sftp: %s is not a regular file (a link?): not read", remote)
		}
		f, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		off, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return err
		}
		if off > st.Size() {
			if err := f.Truncate(0); err != nil {
				return err
			}
			off, _ = f.Seek(0, io.SeekStart)
		}
		rf, err := c.Open(remote)
		if err != nil {
			return err
		}
		defer rf.Close()
		if _, err := rf.Seek(off, io.SeekStart); err != nil {
			return err
		}
		n, err := io.Copy(f, rf)
		if err != nil {
			return err
		}
		if off+n != st.Size() {
			return fmt.Errorf("sftp: %s: got %d of %d bytes", remote, off+n, st.Size())
		}
		if err := f.Sync(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(part, local)
	})
}

// maxReturnNames bounds the search for a free name in a remote day folder.
const maxReturnNames = 10000

// Return moves a processed file from the remote work/ folder into the
// remote done/ or failed/ day folder, uploading its sidecars first, so the
// EHR side can read the ACKs. name is the archived file's name; a name
// taken remotely gets a suffix, nothing is overwritten.
func (s *SFTP) Return(ctx context.Context, rc RemoteClaim, result string, day time.Time, name string, sidecars []string) (string, error) {
	dir := path.Join(s.cfg.Path, result, day.Format("2006-01-02"))
	var dst string
	err := s.do(ctx, func(c *sftp.Client) error {
		if err := c.MkdirAll(dir); err != nil {
			return err
		}
		if _, err := c.Lstat(rc.Path); errors.Is(err, os.ErrNotExist) {
			return os.ErrNotExist
		}
		ext := path.Ext(name)
		stem := strings.TrimSuffix(name, ext)
		dst = ""
		for i := 0; dst == ""; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			if i >= maxReturnNames {
				return fmt.Errorf("sftp: no free name for %s in %s after %d tries", name, dir, i)
			}
			cand := name
			if i > 0 {
				cand = fmt.Sprintf("%s-%d%s", stem, i, ext)
			}
			_, err := c.Lstat(path.Join(dir, cand))
			switch {
			case errors.Is(err, os.ErrNotExist):
				dst = path.Join(dir, cand)
			case err != nil:
				return err // the connection, most likely: do reconnects
			}
		}
		for _, sc := range sidecars {
			if err := upload(c, sc, dst+strings.TrimPrefix(filepath.Base(sc), name)); err != nil {
				return err
			}
		}
		return c.Rename(rc.Path, dst)
	})
	if errors.Is(err, os.ErrNotExist) {
		return "", nil // returned already (a run cut short after the rename)
	}
	if err != nil {
		return "", err
	}
	for _, m := range rc.Markers {
		_, orig, _, _ := ParseClaimName(path.Base(m))
		to := path.Join(path.Dir(dst), MarkerRenamed(rc.Name, orig, path.Base(dst)))
		if err := s.do(ctx, func(c *sftp.Client) error { return c.Rename(m, to) }); err != nil {
			s.cfg.Log.Warn().Str("file", rc.Name).Err(err).Msg("sftp: marker file not returned; it stays in the remote work/ folder")
		}
	}
	return dst, nil
}

// upload copies a local file to remote through a temporary name.
func upload(c *sftp.Client, local, remote string) error {
	in, err := os.Open(local)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := path.Join(path.Dir(remote), "."+path.Base(remote)+".part")
	out, err := c.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if _, err := c.Lstat(remote); err == nil {
		c.Remove(remote) // an earlier upload of the same sidecar, cut short before the file moved
	}
	return c.Rename(tmp, remote)
}
