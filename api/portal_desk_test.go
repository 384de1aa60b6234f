package api_test

import (
	"bytes"
	"image/jpeg"
	"strings"
	"testing"
)

// TestDeskCoverAndNames: at the desk a draft's cover is readable by the
// unit's editors and chief editors (the public route serves live
// articles' only), and by nobody else; the desk names the officials who
// wrote and approved an article, in the article, its revisions and its
// history.
func TestDeskCoverAndNames(t *testing.T) {
	f := newFeedbackFixture(t)
	editorID, editor := f.official(t, "bien.tap", "0911000031", "vp-ubnd", "editor")
	_, chief := f.official(t, "tong.bien.tap", "0911000032", "vp-ubnd", "chief_editor")
	_, stranger := f.official(t, "xu.ly", "0911000033", "so-gtvt", "feedback_handler")
	if resp, b := f.do(t, "PUT", "/v1/portal/categories/tin-tuc", "dev-key", `{"name":"Tin tức","unit":"vp-ubnd"}`); resp.StatusCode != 200 {
		t.Fatalf("category: %d %v", resp.StatusCode, b)
	}
	resp, a := f.do(t, "POST", "/v1/portal/articles", editor, `{"category":"tin-tuc","vi":{"title":"Ngày hội việc làm","body":"<p>Tại Tam Kỳ.</p>"}}`)
	if resp.StatusCode != 201 {
		t.Fatalf("draft: %d %v", resp.StatusCode, a)
	}
	id := a["id"].(string)
	cover := "/v1/portal/desk/" + id + "/cover"
	if resp, _ := f.get(t, cover, editor); resp.StatusCode != 404 {
		t.Errorf("the cover of a draft without one: %d, want 404", resp.StatusCode)
	}
	if resp, b := f.putRaw(t, cover, editor, "image/jpeg", jpegWithGPS(t, 40, 30)); resp.StatusCode != 200 {
		t.Fatalf("cover: %d %s", resp.StatusCode, b)
	}
	for who, tok := range map[string]string{"the editor": editor, "the chief editor": chief} {
		resp, got := f.get(t, cover, tok)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || bytes.Contains(got, []byte("GPS")) {
			t.Errorf("%s reading the draft's cover: %d %s", who, resp.StatusCode, resp.Header.Get("Content-Type"))
		} else if _, err := jpeg.Decode(bytes.NewReader(got)); err != nil {
			t.Errorf("%s: the cover does not decode: %v", who, err)
		}
	}
	for who, tok := range map[string]string{"nobody": "", "another official": stranger} {
		if resp, _ := f.get(t, cover, tok); resp.StatusCode != 401 && resp.StatusCode != 403 {
			t.Errorf("%s reading the draft's cover: %d", who, resp.StatusCode)
		}
	}
	if resp, b := f.do(t, "POST", "/v1/portal/desk/"+id+"/submit", editor, ""); resp.StatusCode != 200 {
		t.Fatalf("submit: %d %v", resp.StatusCode, b)
	}
	if resp, b := f.do(t, "POST", "/v1/portal/desk/"+id+"/approve", chief, `{}`); resp.StatusCode != 200 {
		t.Fatalf("approve: %d %v", resp.StatusCode, b)
	}
	const wrote, approved = "Cán bộ (bien.tap)", "Cán bộ (tong.bien.tap)"
	_, d := f.do(t, "GET", "/v1/portal/desk/"+id, chief, "")
	if d["created_by"] != editorID || d["created_by_name"] != wrote || d["submitted_by_name"] != wrote || d["approved_by_name"] != approved {
		t.Errorf("the desk's article names %v / %v / %v", d["created_by_name"], d["submitted_by_name"], d["approved_by_name"])
	}
	_, l := f.do(t, "GET", "/v1/portal/desk", chief, "")
	if items, _ := l["items"].([]any); len(items) != 1 || items[0].(map[string]any)["created_by_name"] != wrote {
		t.Errorf("the desk: %v", l["items"])
	}
	_, revs := f.do(t, "GET", "/v1/portal/desk/"+id+"/revisions", chief, "")
	if items, _ := revs["items"].([]any); len(items) == 0 || items[0].(map[string]any)["by_name"] != wrote {
		t.Errorf("revisions: %v", revs["items"])
	}
	_, hist := f.do(t, "GET", "/v1/portal/desk/"+id+"/history", chief, "")
	names := map[any]bool{}
	for _, e := range hist["items"].([]any) {
		names[e.(map[string]any)["actor_name"]] = true
	}
	if !names[wrote] || !names[approved] {
		t.Errorf("history names %v", names)
	}
	// Public: without who did what.
	resp, pub := f.get(t, "/v1/portal/articles/ngay-hoi-viec-lam", "")
	if resp.StatusCode != 200 || bytes.Contains(pub, []byte("bien.tap")) || bytes.Contains(pub, []byte("_name")) {
		t.Errorf("the public article: %d %s", resp.StatusCode, pub)
	}
}

// TestApprovalIsOfTheVersionRead: a chief editor approves the article as
// they read it. While they read, another chief editor returns it and the
// editor rewrites and resubmits it; the first one's approval of the
// version they read is then refused (409 naming version) and nothing is
// published, until they approve what is there now.
func TestApprovalIsOfTheVersionRead(t *testing.T) {
	f := newFeedbackFixture(t)
	_, editor := f.official(t, "bien.tap", "0911000041", "vp-ubnd", "editor")
	_, chief := f.official(t, "tong.bien.tap", "0911000042", "vp-ubnd", "chief_editor")
	_, other := f.official(t, "pho.bien.tap", "0911000043", "vp-ubnd", "chief_editor")
	if resp, b := f.do(t, "PUT", "/v1/portal/categories/tin-tuc", "dev-key", `{"name":"Tin tức","unit":"vp-ubnd"}`); resp.StatusCode != 200 {
		t.Fatalf("category: %d %v", resp.StatusCode, b)
	}
	resp, a := f.do(t, "POST", "/v1/portal/articles", editor, `{"category":"tin-tuc","vi":{"title":"Lịch cắt điện","slug":"lich-cat-dien","body":"<p>Thứ Bảy, 7 giờ.</p>"}}`)
	if resp.StatusCode != 201 {
		t.Fatalf("draft: %d %v", resp.StatusCode, a)
	}
	id := a["id"].(string)
	if resp, b := f.do(t, "POST", "/v1/portal/desk/"+id+"/submit", editor, ""); resp.StatusCode != 200 {
		t.Fatalf("submit: %d %v", resp.StatusCode, b)
	}
	resp, read := f.do(t, "GET", "/v1/portal/desk/"+id, chief, "")
	seen, ok := read["version"].(float64)
	if resp.StatusCode != 200 || !ok || seen < 1 {
		t.Fatalf("the desk's article: %d, version %v", resp.StatusCode, read["version"])
	}
	if resp, b := f.do(t, "POST", "/v1/portal/desk/"+id+"/return", other, `{"comment":"Thêm địa điểm"}`); resp.StatusCode != 200 {
		t.Fatalf("return: %d %v", resp.StatusCode, b)
	}
	if resp, b := f.do(t, "PUT", "/v1/portal/desk/"+id, editor, `{"vi":{"title":"Lịch cắt điện","slug":"lich-cat-dien","body":"<p>Không cắt điện.</p>"}}`); resp.StatusCode != 200 {
		t.Fatalf("edit: %d %v", resp.StatusCode, b)
	}
	if resp, b := f.do(t, "POST", "/v1/portal/desk/"+id+"/submit", editor, ""); resp.StatusCode != 200 {
		t.Fatalf("resubmit: %d %v", resp.StatusCode, b)
	}
	resp, b := f.do(t, "POST", "/v1/portal/desk/"+id+"/approve", chief, fmtS(`{"version":%d}`, int(seen)))
	if resp.StatusCode != 409 || b["field"] != "version" && !strings.Contains(fmtS("%v", b["errors"]), "version") {
		t.Errorf("approving the version read before the rewrite: %d %v, want 409 naming version", resp.StatusCode, b)
	}
	if resp, _ := f.get(t, "/v1/portal/articles/lich-cat-dien", ""); resp.StatusCode != 404 {
		t.Errorf("the public reads the article after a refused approval: %d", resp.StatusCode)
	}
	if resp, b := f.do(t, "POST", "/v1/portal/desk/"+id+"/approve", chief, `{"version":"7"}`); resp.StatusCode != 400 {
		t.Errorf("a version that is not a number: %d %v", resp.StatusCode, b)
	}
	_, now := f.do(t, "GET", "/v1/portal/desk/"+id, chief, "")
	if resp, b := f.do(t, "POST", "/v1/portal/desk/"+id+"/approve", chief, fmtS(`{"version":%d}`, int(now["version"].(float64)))); resp.StatusCode != 200 || b["status"] != "published" {
		t.Fatalf("approving what is there now: %d %v", resp.StatusCode, b)
	}
	resp, pub := f.get(t, "/v1/portal/articles/lich-cat-dien", "")
	if resp.StatusCode != 200 || !bytes.Contains(pub, []byte("Không cắt điện")) || bytes.Contains(pub, []byte(`"version"`)) {
		t.Errorf("public article: %d %s", resp.StatusCode, pub)
	}
}
