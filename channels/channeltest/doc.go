// Package channeltest is the contract suite every channels.Channel
// implementation runs in its own tests, against a fake of its provider.
package channeltest
