package portal

import (
	"context"
	"slices"
	"sync"
	"time"
)

// PublicTTL is how long Public reuses a list it read: a publication,
// unpublication or correction made by another process shows in this
// process's lists within PublicTTL (one made by this process at once;
// an article's own page is always read afresh).
const PublicTTL = 10 * time.Second

// MaxPublicList is the longest list Public returns.
const MaxPublicList = 200

// publicReadTimeout bounds one read of a list, which every waiting
// caller shares.
const publicReadTimeout = 30 * time.Second

// publicCache keeps the lists the public reads, one per category (of
// those that exist, and "" for all) and language, and the categories.
type publicCache struct {
	mu    sync.Mutex
	gen   uint64 // bumped by every change this process stores
	cats  map[string]bool
	catAt time.Time
	lists map[[2]string]*publicList
}

type publicList struct {
	mu   sync.Mutex // held while the list is read: the others wait for it
	gen  uint64
	at   time.Time
	list []Article
}

// changed drops what the cache keeps, after this process stored a change.
func (c *publicCache) changed() {
	c.mu.Lock()
	c.gen++
	c.cats = nil
	c.mu.Unlock()
}

// Public lists what the public sees now, newest first, at most limit
// (≤ MaxPublicList); lang "en" keeps articles with an English version; a
// category that does not exist has none.
//
// Anyone may ask (GET /v1/portal/articles, the Atom feeds), and a list
// reads whole articles (bodies of up to Config.MaxBody in each language),
// so each process reads a category's list at most once a PublicTTL, one
// caller at a time, and the callers share it; a category that does not
// exist reads no article.
func (s *Service) Public(ctx context.Context, category, lang string, limit int) ([]Article, error) {
	if limit <= 0 || limit > MaxPublicList {
		limit = MaxPublicList
	}
	c := &s.public
	now := s.d.Now()
	if category != "" {
		known, err := s.publicCategory(ctx, category, now)
		if err != nil || !known {
			return nil, err
		}
	}
	c.mu.Lock()
	if c.lists == nil {
		c.lists = map[[2]string]*publicList{}
	}
	key := [2]string{category, lang}
	e := c.lists[key]
	if e == nil {
		e = &publicList{}
		c.lists[key] = e
	}
	gen := c.gen
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.list == nil || e.gen != gen || now.Sub(e.at) >= PublicTTL || now.Before(e.at) {
		// Not the caller's context: the others wait on this read.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publicReadTimeout)
		defer cancel()
		list, err := s.d.Store.Articles(rctx, Filter{Category: category, LiveAt: now.UTC(), Lang: lang, Limit: MaxPublicList})
		if err != nil {
			return nil, err
		}
		if list == nil {
			list = []Article{}
		}
		e.list, e.gen, e.at = list, gen, now
	}
	return slices.Clone(e.list[:min(limit, len(e.list))]), nil
}

// publicCategory reports whether the category exists, from a list of
// the categories read at most once a PublicTTL.
func (s *Service) publicCategory(ctx context.Context, code string, now time.Time) (bool, error) {
	c := &s.public
	c.mu.Lock()
	if c.cats != nil && now.Sub(c.catAt) < PublicTTL && !now.Before(c.catAt) {
		known := c.cats[code]
		c.mu.Unlock()
		return known, nil
	}
	c.mu.Unlock()
	cats, err := s.d.Store.PortalCategories(ctx)
	if err != nil {
		return false, err
	}
	known := map[string]bool{}
	for _, k := range cats {
		known[k.Code] = true
	}
	c.mu.Lock()
	c.cats, c.catAt = known, now
	c.mu.Unlock()
	return known[code], nil
}
