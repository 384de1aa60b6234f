// Package redis keeps the accounts domain's short-lived state in Redis:
// sessions (under the SHA-256 of their token, with expiry, revocable one by
// one or per account) and officials' outstanding pushed-code challenges.
//
// Keys, under the configured prefix (default "acct:{s}:"):
//
//	sess:<token hash>   hash: acc, kind, r (restricted), c, e (ms)
//	of:<account id>     set: the session keys of the account
//	blocked:<account>   string: no new sessions until it expires (closed)
//	mfa:<account id>    string: the outstanding pushed-code challenge id
//
// Creating and revoking are single Lua scripts, so a revocation and a
// sign-in cannot interleave. The scripts touch keys derived from set
// members, so on Redis Cluster the prefix must hold a hash tag, as the
// default does. Expiry is decided by the accounts Service's clock; Redis
// TTLs only collect garbage.
package redis
