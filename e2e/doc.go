// Package e2e holds end-to-end tests that run the izdrop binary as a user
// would - killed with SIGKILL mid-run, two processes on one inbox - against
// a sandbox registry started in the test process, which outlives every
// izdrop process and counts what it received. They signal processes and
// start OpenSSH's sshd, so they build on unix only.
package e2e
