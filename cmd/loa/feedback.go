package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/blob"
	"github.com/loa-hub/loa/internal/blob/s3"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/producer/feedback"
	"github.com/loa-hub/loa/producer/portal"
)

// feedbackConfig is the configuration of citizen feedback and of the
// blob store that keeps its photos (and the portal's images).
type feedbackConfig struct {
	BlobDir        string
	S3             s3.Config
	HolidaysFile   string
	CategoriesFile string
	// KeyPerDay and KeyPhotosPerDay bound one API key's feedback, and
	// its feedback with photos, in 24 hours over every phone.
	KeyPerDay, KeyPhotosPerDay int
}

func loadFeedbackConfig(getenv func(string) string, errs *[]error) feedbackConfig {
	c := feedbackConfig{
		BlobDir:        getenv("LOA_BLOB_DIR"),
		HolidaysFile:   getenv("LOA_FEEDBACK_HOLIDAYS_FILE"),
		CategoriesFile: getenv("LOA_FEEDBACK_CATEGORIES_FILE"),
		S3: s3.Config{Endpoint: getenv("LOA_BLOB_S3_ENDPOINT"), Bucket: getenv("LOA_BLOB_S3_BUCKET"),
			Region: or(getenv("LOA_BLOB_S3_REGION"), "us-east-1"), AccessKey: getenv("LOA_BLOB_S3_ACCESS_KEY"),
			SecretKey: getenv("LOA_BLOB_S3_SECRET_KEY"), CreateBucket: getenv("LOA_BLOB_S3_CREATE_BUCKET") == "1"},
	}
	def := feedback.DefaultConfig()
	c.KeyPerDay = intVar(getenv, "LOA_FEEDBACK_KEY_PER_DAY", def.KeyPerDay, 0, 10_000_000, errs)
	c.KeyPhotosPerDay = intVar(getenv, "LOA_FEEDBACK_KEY_PHOTOS_PER_DAY", def.KeyPhotosPerDay, 0, 10_000_000, errs)
	if f := getenv("LOA_BLOB_S3_SECRET_KEY_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("LOA_BLOB_S3_SECRET_KEY_FILE: %w", err))
		}
		c.S3.SecretKey = strings.TrimSpace(string(b))
	}
	if c.S3.Endpoint != "" {
		if err := c.S3.Validate(); err != nil {
			*errs = append(*errs, fmt.Errorf("LOA_BLOB_S3_*: %w", err))
		}
		if c.BlobDir != "" {
			*errs = append(*errs, errors.New("LOA_BLOB_DIR and LOA_BLOB_S3_ENDPOINT: set one blob store, not both"))
		}
	}
	return c
}

// buildBlobs opens the configured blob store: S3-compatible storage, a
// directory, or in dev mode $LOA_DATA_DIR/blobs. Nil when none is
// configured (uploads are then refused with 503).
func buildBlobs(ctx context.Context, cfg config, dev bool) (api.Blobs, error) {
	switch {
	case cfg.Feedback.S3.Endpoint != "":
		return s3.New(ctx, cfg.Feedback.S3)
	case cfg.Feedback.BlobDir != "":
		return blob.NewDir(cfg.Feedback.BlobDir)
	case dev:
		return blob.NewDir(filepath.Join(cfg.DataDir, "blobs"))
	}
	return nil, nil
}

// grantsOf adapts the accounts service to what the feedback and portal
// services ask of roles.
type grantsOf struct{ acc *accounts.Service }

func (g grantsOf) Grants(ctx context.Context, id string) ([]feedback.Grant, error) {
	gs, err := g.acc.Roles(ctx, id)
	out := make([]feedback.Grant, 0, len(gs))
	for _, x := range gs {
		out = append(out, feedback.Grant{Unit: x.Unit, Role: string(x.Role)})
	}
	return out, err
}

// approvalUnit is the DoIC's unit, as the accounts service resolves it.
func approvalUnit(cfg config, dev bool) string {
	if cfg.Accounts.ApprovalUnit == "" && dev {
		return demoApprovalUnit
	}
	return cfg.Accounts.ApprovalUnit
}

func buildFeedback(ctx context.Context, cfg config, store *sqlstore.DB, acc *accounts.Service, log *slog.Logger, dev bool) (*feedback.Service, error) {
	fc := feedback.DefaultConfig()
	fc.CoordinatorUnit = approvalUnit(cfg, dev)
	fc.KeyPerDay, fc.KeyPhotosPerDay = cfg.Feedback.KeyPerDay, cfg.Feedback.KeyPhotosPerDay
	d := feedback.Deps{Store: store, Roles: grantsOf{acc}, Directory: store, Log: log.With("component", "feedback")}
	if cfg.Feedback.HolidaysFile != "" {
		f, err := os.Open(cfg.Feedback.HolidaysFile)
		if err != nil {
			return nil, fmt.Errorf("LOA_FEEDBACK_HOLIDAYS_FILE: %w", err)
		}
		defer f.Close()
		if d.Calendar, err = feedback.ParseCalendar(f); err != nil {
			return nil, fmt.Errorf("LOA_FEEDBACK_HOLIDAYS_FILE: %w", err)
		}
	}
	var cats []feedback.Category
	switch {
	case cfg.Feedback.CategoriesFile != "":
		f, err := os.Open(cfg.Feedback.CategoriesFile)
		if err != nil {
			return nil, fmt.Errorf("LOA_FEEDBACK_CATEGORIES_FILE: %w", err)
		}
		defer f.Close()
		if cats, err = feedback.ParseCategories(f); err != nil {
			return nil, fmt.Errorf("LOA_FEEDBACK_CATEGORIES_FILE: %w", err)
		}
	case dev:
		if have, err := store.FeedbackCategories(ctx); err != nil {
			return nil, err
		} else if len(have) == 0 {
			cats = feedback.SampleCategories()
		}
	}
	for _, c := range cats {
		if err := store.PutFeedbackCategory(ctx, c); err != nil {
			return nil, err
		}
	}
	return feedback.New(fc, d)
}

// runAdminFeedback: loa admin feedback categories load FILE | route CATEGORY AREA AGENCY.
func runAdminFeedback(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	const use = "usage: loa admin feedback categories load FILE | loa admin feedback route CATEGORY AREA AGENCY"
	if len(args) == 3 && args[0] == "categories" && args[1] == "load" {
		f, err := os.Open(args[2])
		if err != nil {
			return err
		}
		defer f.Close()
		cats, err := feedback.ParseCategories(f)
		if err != nil {
			return err
		}
		db, err := openAdminStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		for _, c := range cats {
			if err := db.PutFeedbackCategory(ctx, c); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "loaded %d feedback categories from %s\n", len(cats), args[2])
		return nil
	}
	if len(args) == 4 && args[0] == "route" {
		db, err := openAdminStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		if _, err := db.FeedbackCategory(ctx, args[1]); err != nil {
			return fmt.Errorf("category %s: %w", args[1], err)
		}
		if _, err := db.AreaLineage(ctx, args[2]); err != nil {
			return fmt.Errorf("area %s: %w", args[2], err)
		}
		if !feedback.ValidCode(args[3]) {
			return fmt.Errorf("agency %q: must be a unit code (letters, digits, '.', '_', '-')", args[3])
		}
		if err := db.PutFeedbackRoute(ctx, feedback.Route{Category: args[1], Area: args[2], Agency: args[3]}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "feedback of %s from area %s now goes to %s\n", args[1], args[2], args[3])
		return nil
	}
	return errors.New(use)
}

// buildPortal wires the portal; loa dev starts with two categories of the
// demo units.
func buildPortal(ctx context.Context, cfg config, store *sqlstore.DB, acc *accounts.Service, log *slog.Logger, dev bool) (*portal.Service, error) {
	pc := portal.DefaultConfig()
	pc.Topics = acc.Topics()
	if cfg.PortalBaseURL != "" {
		pc.BaseURL = cfg.PortalBaseURL
	} else if cfg.PublicURL != "" {
		pc.BaseURL = cfg.PublicURL
	} else if dev {
		pc.BaseURL = "http://" + cfg.HTTPAddr
	}
	if dev {
		if have, err := store.PortalCategories(ctx); err != nil {
			return nil, err
		} else if len(have) == 0 {
			for _, c := range []portal.Category{
				{Code: "tin-tuc", Name: "Tin tức - Sự kiện", NameEN: "News", Unit: demoApprovalUnit, Topic: "general"},
				{Code: "thong-bao", Name: "Thông báo", NameEN: "Announcements", Unit: demoApprovalUnit, Topic: "disaster"},
			} {
				if err := store.PutPortalCategory(ctx, c); err != nil {
					return nil, err
				}
			}
		}
	}
	return portal.New(pc, portal.Deps{Store: store, Roles: portalGrantsOf{acc}, Log: log.With("component", "portal")})
}

type portalGrantsOf struct{ acc *accounts.Service }

func (g portalGrantsOf) Independent(ctx context.Context, approver string, writers ...string) error {
	return g.acc.CheckIndependent(ctx, approver, writers...)
}

func (g portalGrantsOf) Grants(ctx context.Context, id string) ([]portal.Grant, error) {
	gs, err := g.acc.Roles(ctx, id)
	out := make([]portal.Grant, 0, len(gs))
	for _, x := range gs {
		out = append(out, portal.Grant{Unit: x.Unit, Role: string(x.Role)})
	}
	return out, err
}
