// Package service is izdrop running: it wires the flow packages together -
// watcher finds and claims export files, transform turns them into
// messages, outbound delivers each, archive files the result - with the
// journal that makes every step survive a crash. cmd/izdrop only loads the
// configuration and calls it.
package service
