// Package service is izdrop running: it wires the flow packages together -
// watcher finds and claims export files, transform turns them into
// messages, outbound delivers each, archive files the result - with the
// journal that makes every step survive a crash. cmd/izdrop only loads the
// configuration and calls it.
//
// Order. A patient's messages go in file order, one at a time; different
// patients in parallel (sched). A message without a final outcome blocks
// its patient for the rest of the pass, and a file that stops part-way for
// another reason (a lock, the journal, an I/O error) stops the pass, so a
// newer file never overtakes it. Passes over one inbox take turns across
// processes under the inbox's lock file - or, with a journal several hosts
// share (a journal.Locker), under the inbox's lock in the journal, across
// hosts: two processes working on two files at once could not keep a
// patient's order. A pass whose shared lock is lost stops as on a stop
// request. Each host files into its own archive; a file another host left
// half-filed, or filed but never returned to an SFTP server, is filed
// again here from the journal.
//
// Crash safety. A message is journalled - MSH-10, records and the exact
// bytes - before it is sent, its answer before the next step; a resend
// sends the journalled bytes. A file read again after a stop is first
// checked to read as it did (each message holding the lines it held); if
// not, its started messages are finished from the journal and it is filed
// as failed. A file is filed only when every record has an outcome, and a
// filing cut short after the move is finished from the journal.
package service
