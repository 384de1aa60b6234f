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
	in = append(in, bytes.Repeat([]byte{0x55}, 4900<<10-len(in)-2)...) // entropy-coded data
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
