package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/archive"
	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/watcher"
)

// source is where an inbox's files come from: a local folder or an SFTP
// server. Either way, files are processed from a local work/ folder.
type source interface {
	// claimed returns the files already claimed and ready locally (those a
	// stop or crash left behind included), oldest claim first.
	claimed(ctx context.Context) ([]watcher.Claimed, error)
	// list lists the inbox for the stability tracker.
	list(ctx context.Context) ([]watcher.Entry, error)
	// claim takes a ready file and makes it available locally.
	claim(ctx context.Context, name string, now time.Time) (watcher.Claimed, error)
	// archived is told when a file has been filed locally.
	archived(ctx context.Context, c watcher.Claimed, f journal.File) error
	// lockPath is the inbox's pass lock file, shared by every izdrop
	// process that works on the inbox on this machine.
	lockPath() string
	// workDir is the local folder claimed files are processed from.
	workDir() string
	trustModTime() bool
	close()
}

type localSource struct {
	in   *config.Inbox
	pair watcher.Pairing // files that come in pairs (FHIR exports), nil for others
}

func (l localSource) work() string { return filepath.Join(l.in.Path, "work") }

func (l localSource) claimed(context.Context) ([]watcher.Claimed, error) {
	return watcher.WorkFilesPaired(l.in.Path, l.work(), l.in.Marker, l.pair)
}

func (l localSource) list(context.Context) ([]watcher.Entry, error) {
	return watcher.ListLocal(l.in.Path)
}

func (l localSource) claim(_ context.Context, name string, now time.Time) (watcher.Claimed, error) {
	return watcher.ClaimLocalPaired(l.in.Path, l.work(), name, l.in.Marker, l.pair, now)
}

func (l localSource) archived(context.Context, watcher.Claimed, journal.File) error { return nil }
func (l localSource) workDir() string                                               { return l.work() }
func (l localSource) lockPath() string                                              { return filepath.Join(l.in.Path, passLock) }
func (l localSource) trustModTime() bool                                            { return true }
func (l localSource) close()                                                        {}

// passLock is the name of an inbox's pass lock file: in a local inbox's
// folder (a hidden name, never taken as an export), in an SFTP inbox's
// local archive folder.
const passLock = ".izdrop.lock"

// sftpSource claims files on the server (a rename into the remote work/),
// downloads them into the local archive's work/ folder, and, after they are
// filed locally, puts them and their sidecars back into the remote done/ or
// failed/ folders.
type sftpSource struct {
	in    *config.Inbox
	sftp  *watcher.SFTP
	j     journal.Store
	loc   *time.Location
	local string // local work folder
	log   zerolog.Logger
}

func newSFTPSource(ctx context.Context, in *config.Inbox, j journal.Store, loc *time.Location, log zerolog.Logger) (*sftpSource, error) {
	cfg := watcher.SFTPConfig{Host: in.Host, Port: in.Port, User: in.User, KeyFile: in.KeyFile, KnownHosts: in.KnownHosts,
		InsecureIgnoreHostKey: in.InsecureIgnoreHostKey, Path: in.Path, Log: log}
	var err error
	if in.PasswordEnv != "" || in.PasswordFile != "" {
		if cfg.Password, err = config.Secret(in.PasswordEnv, in.PasswordFile); err != nil {
			return nil, fmt.Errorf("sftp password: %w", err)
		}
	}
	if in.PassphraseEnv != "" || in.PassphraseFile != "" {
		if cfg.Passphrase, err = config.Secret(in.PassphraseEnv, in.PassphraseFile); err != nil {
			return nil, fmt.Errorf("sftp key passphrase: %w", err)
		}
	}
	c, err := watcher.NewSFTP(cfg)
	if err != nil {
		return nil, err
	}
	// A remote folder that is missing or not writable is an error now, not
	// a silent no-op later.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.Check(cctx); err != nil {
		c.Close()
		return nil, err
	}
	return &sftpSource{in: in, sftp: c, j: j, loc: loc, local: filepath.Join(in.Archive, "work"), log: log}, nil
}

func (s *sftpSource) claimed(ctx context.Context) ([]watcher.Claimed, error) {
	remote, err := s.sftp.WorkFiles(ctx)
	if err != nil {
		return nil, err
	}
	for _, rc := range remote {
		f, err := s.j.GetFile(ctx, rc.ID)
		local := filepath.Join(s.local, rc.ID+"--"+rc.Name)
		own := f.ArchivePath == "" || within(s.in.Archive, f.ArchivePath)
		remoteArchive := s.in.RemoteArchive != nil && *s.in.RemoteArchive
		switch {
		case err == nil && f.State == journal.Archived && !own && remoteArchive:
			// Filed by another host sharing the journal, which stopped
			// before returning it: downloaded and filed again here
			// (process), then returned.
			if !exists(local) {
				if err := s.sftp.Download(ctx, rc.Path, local); err != nil {
					return nil, fmt.Errorf("downloading %s: %w", rc.Name, err)
				}
			}
		case err == nil && f.State == journal.Archived:
			// Filed locally but not yet returned: a run cut short. A file
			// that cannot be returned now is tried again at the next pass;
			// its records have their outcomes, so the others go on.
			if err := s.returnFile(ctx, rc, f); err != nil {
				s.log.Warn().Str("file", rc.Name).Str("claim", rc.ID).Err(err).Msg("returning the file to the remote done/failed folder failed; retried at the next pass")
			}
		case err == nil && f.State == journal.Archiving && !exists(local) && own && exists(f.ArchivePath):
			// Moved into the local archive just before a stop: the pass
			// finishes it from the journal (finishArchiving); downloading
			// it again would make a second copy.
		case err == nil || errors.Is(err, journal.ErrNotFound):
			if !exists(local) {
				// A download that fails stops the pass: files claimed after
				// this one must not overtake it.
				if err := s.sftp.Download(ctx, rc.Path, local); err != nil {
					return nil, fmt.Errorf("downloading %s: %w", rc.Name, err)
				}
			}
		default:
			return nil, err
		}
	}
	return watcher.WorkFiles(s.local, s.local, "")
}

func (s *sftpSource) list(ctx context.Context) ([]watcher.Entry, error) { return s.sftp.List(ctx) }

func (s *sftpSource) claim(ctx context.Context, name string, now time.Time) (watcher.Claimed, error) {
	rc, err := s.sftp.Claim(ctx, name, s.in.Marker, now)
	if err != nil {
		return watcher.Claimed{}, err
	}
	local := filepath.Join(s.local, rc.ID+"--"+rc.Name)
	if err := s.sftp.Download(ctx, rc.Path, local); err != nil {
		// The file is safe in the remote work/: the next pass downloads it.
		return watcher.Claimed{}, fmt.Errorf("downloading %s: %w", name, err)
	}
	return watcher.Claimed{ID: rc.ID, Name: rc.Name, Path: local, At: rc.At}, nil
}

func (s *sftpSource) archived(ctx context.Context, c watcher.Claimed, f journal.File) error {
	if s.in.RemoteArchive == nil || !*s.in.RemoteArchive {
		return nil // the original stays in the remote work/ folder
	}
	remote, err := s.sftp.WorkFiles(ctx)
	if err != nil {
		return err
	}
	for _, rc := range remote {
		if rc.ID == c.ID {
			return s.returnFile(ctx, rc, f)
		}
	}
	return nil
}

// returnFile puts a file filed locally, and its sidecars, back into the
// remote done/ or failed/ day folder it was filed under.
func (s *sftpSource) returnFile(ctx context.Context, rc watcher.RemoteClaim, f journal.File) error {
	if s.in.RemoteArchive == nil || !*s.in.RemoteArchive {
		return nil
	}
	var sidecars []string
	for _, suffix := range archive.Sidecars() {
		if exists(f.ArchivePath + suffix) {
			sidecars = append(sidecars, f.ArchivePath+suffix)
		}
	}
	day := f.UpdatedAt.In(s.loc)
	if d, err := time.ParseInLocation("2006-01-02", filepath.Base(filepath.Dir(f.ArchivePath)), s.loc); err == nil {
		day = d
	}
	_, err := s.sftp.Return(ctx, rc, f.Result, day, filepath.Base(f.ArchivePath), sidecars)
	return err
}

func (s *sftpSource) lockPath() string   { return filepath.Join(s.in.Archive, passLock) }
func (s *sftpSource) trustModTime() bool { return false }
func (s *sftpSource) workDir() string    { return s.local }
func (s *sftpSource) close()             { s.sftp.Close() }

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
