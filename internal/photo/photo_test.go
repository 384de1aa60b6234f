package photo_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loa-hub/loa/internal/photo"
)

func img() image.Image {
	m := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for x := 0; x < 64; x++ {
		for y := 0; y < 48; y++ {
			m.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), 90, 255})
		}
	}
	return m
}

// exif is an APP1 EXIF segment naming a GPS position.
var exif = func() []byte {
	payload := append([]byte("Exif\x00\x00"), []byte("MM\x00\x2a GPSLatitude 15.8768 GPSLongitude 108.3291")...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	return append(seg, payload...)
}()

func clean(t *testing.T, in []byte, max int64) (photo.Info, []byte, error) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "p"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := photo.Clean(f, bytes.NewReader(in), max)
	out, _ := os.ReadFile(f.Name())
	return info, out, err
}

func TestJPEGLosesEXIF(t *testing.T) {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img(), nil); err != nil {
		t.Fatal(err)
	}
	in := append(append(append([]byte{}, b.Bytes()[:2]...), exif...), b.Bytes()[2:]...)
	info, out, err := clean(t, in, 5<<20)
	if err != nil {
		t.Fatal(err)
	}
	if info.ContentType != photo.JPEG || info.Size != int64(len(out)) || int(info.Size) != b.Len() {
		t.Errorf("info %+v, %d bytes out, want %d", info, len(out), b.Len())
	}
	if bytes.Contains(out, []byte("GPS")) || bytes.Contains(out, []byte("Exif")) {
		t.Error("the EXIF segment is still there")
	}
	if _, err := jpeg.Decode(bytes.NewReader(out)); err != nil {
		t.Errorf("cleaned JPEG does not decode: %v", err)
	}
}

// TestJPEGEndsAtItsEnd: whatever follows a JPEG's end (EOI) is dropped —
// phones append further images there (MPF previews, HDR gain maps), each
// with its own EXIF, GPS included. A progressive JPEG's scans, with the
// tables between them, pass whole (testdata/progressive.jpeg is Go's
// image/testdata/video-001.q50.411.progressive.jpeg: ten scans).
func TestJPEGEndsAtItsEnd(t *testing.T) {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img(), nil); err != nil {
		t.Fatal(err)
	}
	appended := append(append(append([]byte{}, b.Bytes()[:2]...), exif...), b.Bytes()[2:]...)
	in := append(append([]byte{}, b.Bytes()...), appended...)
	info, out, err := clean(t, in, 5<<20)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("GPS")) || !bytes.Equal(out, b.Bytes()) || info.Size != int64(b.Len()) {
		t.Errorf("%d bytes out (GPS: %v), want the first image's %d", len(out), bytes.Contains(out, []byte("GPS")), b.Len())
	}
	prog, err := os.ReadFile("testdata/progressive.jpeg")
	if err != nil {
		t.Fatal(err)
	}
	in = append(append(append(append([]byte{}, prog[:2]...), exif...), prog[2:]...), appended...)
	if _, out, err = clean(t, in, 5<<20); err != nil || !bytes.Equal(out, prog) {
		t.Fatalf("progressive: %v, %d bytes out, want its own %d", err, len(out), len(prog))
	}
	if _, err := jpeg.Decode(bytes.NewReader(out)); err != nil {
		t.Errorf("the cleaned progressive JPEG does not decode: %v", err)
	}
	// Without an EOI, the image data ends the file, as before.
	if _, out, err = clean(t, b.Bytes()[:b.Len()-2], 5<<20); err != nil || len(out) != b.Len()-2 {
		t.Errorf("no EOI: %v, %d bytes", err, len(out))
	}
}

func chunk(typ string, data []byte) []byte {
	c := make([]byte, 8, 12+len(data))
	binary.BigEndian.PutUint32(c, uint32(len(data)))
	copy(c[4:], typ)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

func TestPNGLosesTextAndEXIF(t *testing.T) {
	var b bytes.Buffer
	if err := png.Encode(&b, img()); err != nil {
		t.Fatal(err)
	}
	raw := b.Bytes()
	ihdrEnd := 8 + 8 + 13 + 4
	in := append(append([]byte{}, raw[:ihdrEnd]...), chunk("tEXt", []byte("Author\x00Nguyen Thi Hoa"))...)
	in = append(in, chunk("eXIf", []byte("MM\x00\x2aGPS"))...)
	in = append(in, raw[ihdrEnd:]...)
	info, out, err := clean(t, in, 5<<20)
	if err != nil {
		t.Fatal(err)
	}
	if info.ContentType != photo.PNG || !bytes.Equal(out, raw) {
		t.Errorf("info %+v; cleaned differs from the original without metadata", info)
	}
	if _, err := png.Decode(bytes.NewReader(out)); err != nil {
		t.Error(err)
	}
}

func riffChunk(typ string, data []byte) []byte {
	c := append([]byte(typ), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
	c = append(c, data...)
	if len(data)%2 == 1 {
		c = append(c, 0)
	}
	return c
}

func TestWebPLosesEXIFAndXMP(t *testing.T) {
	vp8x := []byte{0x0C, 0, 0, 0, 63, 0, 0, 47, 0, 0} // EXIF and XMP flags set, 64×48
	body := riffChunk("VP8X", vp8x)
	body = append(body, riffChunk("VP8L", []byte{0x2f, 1, 2, 3, 4})...)
	body = append(body, riffChunk("EXIF", []byte("MM\x00\x2aGPS!"))...)
	body = append(body, riffChunk("XMP ", []byte("<x:xmpmeta>Hoa</x:xmpmeta>"))...)
	in := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(4+len(body)))...)
	in = append(append(in, "WEBP"...), body...)
	info, out, err := clean(t, in, 5<<20)
	if err != nil {
		t.Fatal(err)
	}
	if info.ContentType != photo.WebP || bytes.Contains(out, []byte("GPS")) || bytes.Contains(out, []byte("xmpmeta")) {
		t.Fatalf("info %+v out %q", info, out)
	}
	if got := binary.LittleEndian.Uint32(out[4:8]); int(got) != len(out)-8 {
		t.Errorf("RIFF size %d, file %d", got, len(out))
	}
	if out[20]&0x0C != 0 {
		t.Errorf("VP8X flags %#x still announce EXIF/XMP", out[20])
	}
}

func TestRefused(t *testing.T) {
	var b bytes.Buffer
	jpeg.Encode(&b, img(), nil)
	for name, c := range map[string]struct {
		in   []byte
		max  int64
		want error
	}{
		"text named .jpg": {[]byte(strings.Repeat("<script>alert(1)</script>", 10)), 5 << 20, photo.ErrNotPhoto},
		"over the limit":  {b.Bytes(), int64(b.Len() - 1), photo.ErrTooLarge},
		"cut short":       {b.Bytes()[:300], 5 << 20, photo.ErrNotPhoto},
		"empty":           {nil, 5 << 20, photo.ErrNotPhoto},
		"gif":             {[]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), 5 << 20, photo.ErrNotPhoto},
		"png bad chunk":   {append([]byte("\x89PNG\r\n\x1a\n"), chunk("tEXt", []byte("x"))...), 5 << 20, photo.ErrNotPhoto},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := clean(t, c.in, c.max); !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
}

// BenchmarkCleanJPEG: a 4.9 MiB JPEG with EXIF through Clean into a file;
// B/op shows the photo is streamed, not held (a 32 KiB buffer).
func BenchmarkCleanJPEG(b *testing.B) {
	var buf bytes.Buffer
	jpeg.Encode(&buf, img(), nil)
	in := append(append(append([]byte{}, buf.Bytes()[:2]...), exif...), buf.Bytes()[2:buf.Len()-2]...)
	// Entropy-coded data as a camera's: random bytes, each 0xFF stuffed
	// with 0x00 (one in 256).
	rng := rand.New(rand.NewPCG(1, 2))
	for len(in) < 4900<<10-3 {
		c := byte(rng.UintN(256))
		if in = append(in, c); c == 0xFF {
			in = append(in, 0x00)
		}
	}
	in = append(in, 0xFF, 0xD9)
	f, err := os.Create(filepath.Join(b.TempDir(), "p"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		f.Seek(0, 0)
		if _, err := photo.Clean(f, bytes.NewReader(in), 5<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPixelBombsRefused: a few KiB can declare a picture of billions of
// pixels, which every viewer — the console of the matter's handlers, an
// Open311 client, the citizens' app — must allocate to decode. Nothing is
// decoded here, but the dimensions each format declares in its header
// (PNG's IHDR, JPEG's SOFn, WebP's VP8X canvas, VP8 and VP8L frames) are
// read on the way, and a photo over MaxPixels is refused; the small ones
// pass.
func TestPixelBombsRefused(t *testing.T) {
	var pb bytes.Buffer
	if err := png.Encode(&pb, img()); err != nil {
		t.Fatal(err)
	}
	bigPNG := append([]byte{}, pb.Bytes()...)
	binary.BigEndian.PutUint32(bigPNG[16:], 100_000) // IHDR width
	binary.BigEndian.PutUint32(bigPNG[20:], 100_000) // IHDR height
	binary.BigEndian.PutUint32(bigPNG[29:], crc32.ChecksumIEEE(bigPNG[12:29]))

	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, img(), nil); err != nil {
		t.Fatal(err)
	}
	bigJPEG := append([]byte{}, jb.Bytes()...)
	sof := bytes.Index(bigJPEG, []byte{0xFF, 0xC0})
	if sof < 0 {
		t.Fatal("no SOF0 in the test JPEG")
	}
	binary.BigEndian.PutUint16(bigJPEG[sof+5:], 60_000) // height
	binary.BigEndian.PutUint16(bigJPEG[sof+7:], 60_000) // width

	webp := func(chunks ...[]byte) []byte {
		body := bytes.Join(chunks, nil)
		in := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(4+len(body)))...)
		return append(append(in, "WEBP"...), body...)
	}
	canvas := func(w, h uint32) []byte {
		c := []byte{0, 0, 0, 0}
		c = append(c, byte(w-1), byte((w-1)>>8), byte((w-1)>>16))
		return append(c, byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
	}
	vp8l := func(w, h uint32) []byte {
		bits := (w - 1) | (h-1)<<14
		return append([]byte{0x2f}, binary.LittleEndian.AppendUint32(nil, bits)...)
	}
	vp8 := func(w, h uint16) []byte {
		f := []byte{0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a}
		f = binary.LittleEndian.AppendUint16(f, w)
		return append(binary.LittleEndian.AppendUint16(f, h), 0, 0)
	}
	for name, c := range map[string]struct {
		in   []byte
		want error
	}{
		"png 100,000×100,000":         {bigPNG, photo.ErrTooManyPixels},
		"jpeg 60,000×60,000":          {bigJPEG, photo.ErrTooManyPixels},
		"webp canvas 20,000×20,000":   {webp(riffChunk("VP8X", canvas(20_000, 20_000)), riffChunk("VP8L", vp8l(64, 48))), photo.ErrTooManyPixels},
		"webp lossless 16,384×16,384": {webp(riffChunk("VP8L", vp8l(16_384, 16_384))), photo.ErrTooManyPixels},
		"webp lossy 16,383×16,383":    {webp(riffChunk("VP8 ", vp8(16_383, 16_383))), photo.ErrTooManyPixels},
		"png 64×48":                   {pb.Bytes(), nil},
		"jpeg 64×48":                  {jb.Bytes(), nil},
		"webp canvas and frame 64×48": {webp(riffChunk("VP8X", canvas(64, 48)), riffChunk("VP8L", vp8l(64, 48))), nil},
		"webp lossy 4,000×3,000":      {webp(riffChunk("VP8 ", vp8(4_000, 3_000))), nil},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := clean(t, c.in, 5<<20); !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
}
