// Package connlimit bounds the connections a listener keeps open: in
// all, and per client address, so that one client holding idle
// connections cannot use up a process's memory and file descriptors, nor
// the connections everyone else needs.
package connlimit
