package api_test

import (
	"bytes"
	"image/jpeg"
	"net/http"
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

// TestNoPuppetsAtTheDesk: the chief editor approves, so, like the
// province's approvers, the role is granted by administrators only — a
// unit admin cannot make two accounts of their own, an editor and a chief
// editor, and publish alone. And the approver rule's independence holds at
// the desk: a chief editor who is also their unit's admin cannot create
// an editor, have them write, and approve what they wrote; nor correct it
// once another chief editor approved it.
func TestNoPuppetsAtTheDesk(t *testing.T) {
	f := newFeedbackFixture(t)
	_, admin := f.official(t, "quan.tri.don.vi", "0911000051", "vp-ubnd", "unit_admin")
	_, chiefAdmin := f.official(t, "tong.bien.tap", "0911000052", "vp-ubnd", "chief_editor", "unit_admin")
	_, other := f.official(t, "pho.bien.tap", "0911000053", "vp-ubnd", "chief_editor")
	if resp, b := f.do(t, "PUT", "/v1/portal/categories/tin-tuc", "dev-key", `{"name":"Tin tức","unit":"vp-ubnd","topic":"news"}`); resp.StatusCode != 200 {
		t.Fatalf("category: %d %v", resp.StatusCode, b)
	}
	create := func(by, username, phone, roles string) (*http.Response, map[string]any) {
		return f.do(t, "POST", "/v1/officials", by, fmtS(`{"username":%q,"full_name":"Cán bộ","phone":%q,"unit":"vp-ubnd","roles":%s,"password":"Mật-khẩu-1"}`,
			username, phone, roles))
	}
	// A unit admin grants no chief editor, at creation or later.
	if resp, b := create(admin, "rom.duyet", "0911000054", `["chief_editor"]`); resp.StatusCode != 403 {
		t.Errorf("a unit admin creates a chief editor: %d %v", resp.StatusCode, b)
	}
	resp, p := create(admin, "rom.viet", "0911000055", `["editor"]`)
	if resp.StatusCode != 201 {
		t.Fatalf("a unit admin creates an editor: %d %v", resp.StatusCode, p)
	}
	if resp, b := f.do(t, "POST", "/v1/officials/"+p["id"].(string)+"/roles", admin, `{"unit":"vp-ubnd","role":"chief_editor"}`); resp.StatusCode != 403 {
		t.Errorf("a unit admin grants chief_editor: %d %v", resp.StatusCode, b)
	}

	// The chief editor's own editor.
	resp, puppet := create(chiefAdmin, "con.roi", "0911000056", `["editor"]`)
	if resp.StatusCode != 201 {
		t.Fatalf("the chief editor (unit admin) creates an editor: %d %v", resp.StatusCode, puppet)
	}
	if resp, b := f.do(t, "POST", "/v1/sessions", "", `{"username":"con.roi","password":"Mật-khẩu-1","send_code":"sms"}`); resp.StatusCode != 202 {
		t.Fatalf("send code: %d %v", resp.StatusCode, b)
	}
	resp, s := f.do(t, "POST", "/v1/sessions", "", fmtS(`{"username":"con.roi","password":"Mật-khẩu-1","otp":%q}`, f.lastCode(t)))
	if resp.StatusCode != 201 {
		t.Fatalf("sign-in: %d %v", resp.StatusCode, s)
	}
	editor := s["token"].(string)
	resp, a := f.do(t, "POST", "/v1/portal/articles", editor, `{"category":"tin-tuc","vi":{"title":"Thông báo khẩn","slug":"thong-bao-khan","body":"<p>Chuyển khoản gấp.</p>"}}`)
	if resp.StatusCode != 201 {
		t.Fatalf("draft: %d %v", resp.StatusCode, a)
	}
	id := a["id"].(string)
	if resp, b := f.do(t, "POST", "/v1/portal/desk/"+id+"/submit", editor, ""); resp.StatusCode != 200 {
		t.Fatalf("submit: %d %v", resp.StatusCode, b)
	}
	if resp, b := f.do(t, "POST", "/v1/portal/desk/"+id+"/approve", chiefAdmin, `{}`); resp.StatusCode != 403 || b["type"] != "urn:loa:problem:four-eyes" {
		t.Errorf("the chief editor approves their own editor's article: %d %v, want 403 four-eyes", resp.StatusCode, b)
	}
	if resp, _ := f.get(t, "/v1/portal/articles/thong-bao-khan", ""); resp.StatusCode != 404 {
		t.Errorf("the puppet's article is public: %d", resp.StatusCode)
	}
	if resp, b := f.do(t, "POST", "/v1/portal/desk/"+id+"/approve", other, `{}`); resp.StatusCode != 200 {
		t.Fatalf("an independent chief editor approves: %d %v", resp.StatusCode, b)
	}
	if resp, b := f.do(t, "PUT", "/v1/portal/desk/"+id+"/correction", chiefAdmin, `{"vi":{"title":"Thông báo khẩn","slug":"thong-bao-khan","body":"<p>Số tài khoản mới.</p>"}}`); resp.StatusCode != 403 || b["type"] != "urn:loa:problem:four-eyes" {
		t.Errorf("the chief editor corrects their own editor's article: %d %v, want 403 four-eyes", resp.StatusCode, b)
	}
}
