package feedback

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// PublicView is what anyone may see of a matter: its handling, never the
// citizen's person. Unless the citizen agreed to be named, it holds no
// name, phone, citizen ID, exact address or photo, its location is the
// centroid of its commune, and numbers that look like a phone or a
// citizen ID and the citizen's name are masked in its texts.
type PublicView struct {
	ID           string
	Category     string
	CategoryName string
	Title        string
	Description  string
	Status       Status
	Agency       string
	Answer       string
	RejectReason string
	Rating       int
	Area         string
	AreaName     string
	HasPoint     bool
	Lat, Lon     float64
	// Named: the citizen agreed; Name, Address, Photos and MediaURL are
	// then set.
	Named      bool
	Name       string
	Address    string
	Photos     int // how many photos may be fetched
	MediaURL   string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	DueAt      time.Time
	AnsweredAt time.Time
}

// masked replaces personal data in free text.
const masked = "[đã ẩn]"

var (
	// A Vietnamese phone (0… or +84/84…, separators allowed) or a run of
	// 9 to 12 digits (citizen ID, old ID card), and e-mail addresses.
	phoneOrID = regexp.MustCompile(`(\+?84|0)([\s.\-]?\d){8,10}\b|\b\d{9,12}\b`)
	email     = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)
)

// Redact masks phone numbers, ID numbers, e-mail addresses and the given
// people's names in s: a whole name, and its last word (the given name),
// also when written without diacritics or in another case.
func Redact(s string, names ...string) string {
	if strings.IndexByte(s, '@') >= 0 {
		s = email.ReplaceAllString(s, masked)
	}
	if digits(s) >= 9 { // every match of phoneOrID has 9 digits or more
		s = phoneOrID.ReplaceAllString(s, masked)
	}
	words := wordSpans(s)
	folded := folds.of(s, words)
	type span struct{ from, to int }
	var spans []span
	for _, n := range names {
		nw := word.FindAllString(n, -1)
		if len(nw) == 0 {
			continue
		}
		for i := range nw {
			nw[i] = fold(nw[i])
		}
		given := nw[len(nw)-1]
		for i := 0; i < len(words); i++ {
			if i+len(nw) <= len(words) && len(nw) > 1 && slices.Equal(folded[i:i+len(nw)], nw) {
				spans = append(spans, span{words[i][0], words[i+len(nw)-1][1]})
				i += len(nw) - 1
				continue
			}
			if len([]rune(given)) >= 3 && folded[i] == given {
				spans = append(spans, span{words[i][0], words[i][1]})
			}
		}
	}
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b span) int { return a.from - b.from })
	var b strings.Builder
	at := 0
	for _, sp := range spans {
		if sp.from < at {
			continue
		}
		b.WriteString(s[at:sp.from])
		b.WriteString(masked)
		at = sp.to
	}
	b.WriteString(s[at:])
	return b.String()
}

var word = regexp.MustCompile(`[\p{L}\p{M}\d]+`)

// maxFolds bounds the words foldCache keeps (Vietnamese has some 7,000
// syllables; the rest are names, numbers and whatever people type).
const maxFolds = 100_000

// maxFoldedWord bounds the words foldCache keeps (in bytes: a syllable
// with its marks is at most about 20), so that what it holds is at most
// some 10 MB whatever people type.
const maxFoldedWord = 32

// foldCache keeps the folded form of the words Redact has met. Anyone may
// list public views (GET /v1/public/feedback, up to 500; Open311, up to
// 1,000), and each redacts its texts: folding every word afresh (an NFD
// pass and three allocations a word) cost 1.4-1.8 ms and 460 KB a
// description of 4,000 characters. Past maxFolds, or longer than
// maxFoldedWord, a word is folded and not kept. Safe for concurrent use.
type foldCache struct {
	mu sync.RWMutex
	m  map[string]string
}

var folds = &foldCache{m: map[string]string{}}

// digits counts the ASCII digits of s.
func digits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if '0' <= s[i] && s[i] <= '9' {
			n++
		}
	}
	return n
}

// wordSpans is word.FindAllStringIndex(s, -1) in one allocation, not one
// a word: the runs of letters, marks and ASCII digits.
func wordSpans(s string) [][2]int {
	var out [][2]int
	start := -1
	for i, r := range s {
		in := unicode.IsLetter(r) || unicode.IsMark(r) || '0' <= r && r <= '9'
		switch {
		case in && start < 0:
			start = i
		case !in && start >= 0:
			out = append(out, [2]int{start, i})
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, [2]int{start, len(s)})
	}
	return out
}

// of returns the folded form of each word of s (spans from wordSpans).
func (c *foldCache) of(s string, words [][2]int) []string {
	out := make([]string, len(words))
	var missed []int
	c.mu.RLock()
	for i, w := range words {
		f, ok := c.m[s[w[0]:w[1]]]
		if !ok {
			missed = append(missed, i)
			continue
		}
		out[i] = f
	}
	c.mu.RUnlock()
	if len(missed) == 0 {
		return out
	}
	for _, i := range missed {
		out[i] = fold(s[words[i][0]:words[i][1]])
	}
	c.mu.Lock()
	for _, i := range missed {
		if len(c.m) >= maxFolds {
			break
		}
		if w := s[words[i][0]:words[i][1]]; len(w) <= maxFoldedWord {
			c.m[strings.Clone(w)] = out[i]
		}
	}
	c.mu.Unlock()
	return out
}

// fold lowers a word and drops its diacritics (đ → d), so "Cường" and
// "cuong" compare equal.
func fold(w string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(strings.ToLower(w)) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case r == 'đ':
			b.WriteRune('d')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Public returns the public view of a matter.
func (s *Service) Public(ctx context.Context, id string) (PublicView, error) {
	f, err := s.load(ctx, id)
	if err != nil {
		return PublicView{}, err
	}
	vs, err := s.publicViews(ctx, []Feedback{f})
	if err != nil {
		return PublicView{}, err
	}
	return vs[0], nil
}

// PublicList lists public views, newest first.
func (s *Service) PublicList(ctx context.Context, f Filter) ([]PublicView, error) {
	f.Citizen = "" // nobody lists by citizen in public
	list, err := s.d.Store.ListFeedback(ctx, f)
	if err != nil {
		return nil, err
	}
	return s.publicViews(ctx, list)
}

func (s *Service) publicViews(ctx context.Context, list []Feedback) ([]PublicView, error) {
	var codes []string
	for _, f := range list {
		if f.Location.Area != "" {
			codes = append(codes, f.Location.Area)
		}
	}
	places, err := s.d.Store.AreaPlaces(ctx, codes)
	if err != nil {
		return nil, err
	}
	cats, err := s.d.Store.FeedbackCategories(ctx)
	if err != nil {
		return nil, err
	}
	catName := map[string]string{}
	for _, c := range cats {
		catName[c.Code] = c.Name
	}
	out := make([]PublicView, len(list))
	var stale []Feedback // read without masked texts of MaskRules and their version
	for i, f := range list {
		v := PublicView{ID: f.ID, Category: f.Category, CategoryName: catName[f.Category], Title: f.Title, Description: f.Description,
			Status: f.Status, Agency: f.Agency, Answer: f.Answer, RejectReason: f.RejectReason, Rating: f.Rating,
			Area: f.Location.Area, CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt, DueAt: f.DueAt, AnsweredAt: f.AnsweredAt}
		p := places[f.Location.Area]
		v.AreaName = p.Name
		if f.Citizen.Public {
			v.Named, v.Name, v.Address, v.Photos, v.MediaURL = true, f.Citizen.Name, f.Location.Address, len(f.Photos), f.MediaURL
			v.HasPoint, v.Lat, v.Lon = f.Location.HasPoint, f.Location.Lat, f.Location.Lon
			if !v.HasPoint && p.HasCentroid {
				v.HasPoint, v.Lat, v.Lon = true, p.Lat, p.Lon
			}
		} else {
			m := f.Masked
			if m.Rules != MaskRules || m.Version != f.Version {
				m = maskedOf(f)
				f.Masked = m
				stale = append(stale, f)
			}
			v.Title, v.Description, v.Answer = m.Title, m.Description, m.Answer
			if p.HasCentroid {
				v.HasPoint, v.Lat, v.Lon = true, p.Lat, p.Lon
			}
		}
		if f.Status == StatusRejected && f.RejectReason == ReasonAbusive {
			// Rejected as abusive: nothing of what its sender wrote or sent
			// is shown, so the public view is no way to publish abuse.
			v.Title, v.Description, v.Named, v.Name, v.Address, v.Photos, v.MediaURL = abusiveTitle, "", false, "", "", 0, ""
			if p.HasCentroid {
				v.HasPoint, v.Lat, v.Lon = true, p.Lat, p.Lon
			} else {
				v.HasPoint, v.Lat, v.Lon = false, 0, 0
			}
		}
		out[i] = v
	}
	if len(stale) > 0 {
		// Kept, so that the next read of these versions masks nothing. Not
		// the caller's context: a stranger who hangs up at once must not
		// make every read of them mask afresh.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), maskWriteTimeout)
		defer cancel()
		if err := s.d.Store.MaskFeedback(wctx, stale); err != nil {
			s.d.Log.Warn("feedback: keeping masked texts", "matters", len(stale), "err", err)
		}
	}
	return out, nil
}

// MaskRules numbers the masks Redact (and maskedOf) apply. Each version of
// a matter is stored with its texts masked by these rules (Masked), so a
// public read masks nothing; a row masked by older rules (or written
// before 0167, 0), or from another version, is masked at its next public
// read and kept (by newer rules, during an upgrade: masked at each read,
// not kept). Raise it
// with any change of what Redact or maskedOf masks (TestRedactMasks), so
// that no public view keeps showing what the new rules hide.
const MaskRules = 1

// maskWriteTimeout bounds keeping the masked texts a public read computed.
const maskWriteTimeout = 10 * time.Second

// maskedOf masks a matter's texts for the public views: its address as a
// whole (never word by word), then Redact with the citizen's name.
func maskedOf(f Feedback) Masked {
	m := Masked{Rules: MaskRules, Version: f.Version, Title: f.Title, Description: f.Description, Answer: f.Answer}
	if a := f.Location.Address; a != "" {
		m.Title = strings.ReplaceAll(m.Title, a, masked)
		m.Description = strings.ReplaceAll(m.Description, a, masked)
		m.Answer = strings.ReplaceAll(m.Answer, a, masked)
	}
	m.Title = Redact(m.Title, f.Citizen.Name)
	m.Description = Redact(m.Description, f.Citizen.Name)
	m.Answer = Redact(m.Answer, f.Citizen.Name)
	return m
}

// abusiveTitle stands for the title of a matter rejected as abusive.
const abusiveTitle = "[nội dung không phù hợp đã bị ẩn]"

// PhotoOf returns a matter's photo n (from 0) for someone who may see it:
// anyone when the citizen agreed to be named (unless it was rejected as
// abusive), else those who see the matter in full.
func (s *Service) PhotoOf(ctx context.Context, a Actor, id string, n int) (Photo, error) {
	f, err := s.load(ctx, id)
	if err != nil {
		return Photo{}, err
	}
	if !f.Citizen.Public || f.Status == StatusRejected && f.RejectReason == ReasonAbusive {
		if err := s.mayRead(ctx, a, f); err != nil {
			return Photo{}, err
		}
	}
	if n < 0 || n >= len(f.Photos) {
		return Photo{}, notFound(id + " photo")
	}
	return f.Photos[n], nil
}

// StatsTTL is how long Stats reuses the counts it computed.
const StatsTTL = time.Minute

// statsTimeout bounds one computation of the counts, which every waiting
// caller shares.
const statsTimeout = 30 * time.Second

// statsCache holds the last counts, and the computation under way.
type statsCache struct {
	mu   sync.Mutex
	at   time.Time
	val  []AgencyStat
	busy chan struct{} // closed when the computation under way ends
	err  error         // of the last computation, for its waiters
}

// Stats returns per-agency counts: received, answered, answered on time,
// late (answered after the deadline, or open past it), the average rating.
//
// Anyone may ask (GET /v1/public/feedback/stats), and the counts read
// every matter, so they are computed at most once a StatsTTL per process,
// by one caller at a time; the callers meanwhile share that result. A
// stranger asking in a loop costs the database nothing more.
func (s *Service) Stats(ctx context.Context) ([]AgencyStat, error) {
	c := &s.stats
	for {
		now := s.d.Now()
		c.mu.Lock()
		if c.val != nil && now.Sub(c.at) < StatsTTL && !now.Before(c.at) {
			val := slices.Clone(c.val)
			c.mu.Unlock()
			return val, nil
		}
		if busy := c.busy; busy != nil {
			c.mu.Unlock()
			select {
			case <-busy:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			if err != nil {
				return nil, err
			}
			continue
		}
		c.busy = make(chan struct{})
		c.mu.Unlock()
		val, err := s.computeStats(ctx, now)
		if err != nil {
			return nil, err
		}
		return slices.Clone(val), nil
	}
}

// computeStats computes the counts for Stats, which marked the cache busy,
// keeps them and wakes the callers waiting, even if the store panics.
func (s *Service) computeStats(ctx context.Context, now time.Time) (val []AgencyStat, err error) {
	c := &s.stats
	err = errors.New("feedback: stats: the computation did not finish")
	defer func() {
		c.mu.Lock()
		if err == nil {
			c.val, c.at = val, now
		}
		c.err = err
		close(c.busy)
		c.busy = nil
		c.mu.Unlock()
	}()
	// Not the caller's context: the others wait on this computation.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statsTimeout)
	defer cancel()
	val, err = s.d.Store.FeedbackStats(cctx, now.UTC())
	if val == nil && err == nil {
		val = []AgencyStat{}
	}
	return val, err
}
