package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
)

// accent is the manifest's accentColor (#2B5797).
var accent = color.NRGBA{R: 0x2B, G: 0x57, B: 0x97, A: 0xFF}

// glyph reports how much of the unit square's point (x, y) in [0,1]² is covered by the
// onbehalf mark: a person (head and shoulders) with a key bow at the lower right — someone
// acting with their own key.
func glyph(x, y float64) bool {
	head := math.Hypot(x-0.42, y-0.34) <= 0.15
	// Shoulders: the upper half of an ellipse.
	dx, dy := (x-0.42)/0.27, (y-0.80)/0.25
	shoulders := y <= 0.80 && dx*dx+dy*dy <= 1
	// Key: a ring and a shaft with one tooth.
	r := math.Hypot(x-0.72, y-0.60)
	ring := r <= 0.11 && r >= 0.055
	shaft := x >= 0.70 && x <= 0.75 && y >= 0.70 && y <= 0.90
	tooth := x >= 0.75 && x <= 0.81 && y >= 0.80 && y <= 0.85
	// A gap between the person and the key keeps the shapes apart at 32 px.
	gap := math.Hypot(x-0.72, y-0.60) <= 0.15 && !ring
	return (head || shoulders) && !gap || ring || shaft || tooth
}

// draw renders the glyph at size×size with 4×4 supersampling: fg over bg.
func draw(size int, fg, bg color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	const ss = 4
	for py := 0; py < size; py++ {
		for px := 0; px < size; px++ {
			hits := 0
			for sy := 0; sy < ss; sy++ {
				for sx := 0; sx < ss; sx++ {
					x := (float64(px) + (float64(sx)+0.5)/ss) / float64(size)
					y := (float64(py) + (float64(sy)+0.5)/ss) / float64(size)
					if glyph(x, y) {
						hits++
					}
				}
			}
			a := float64(hits) / (ss * ss)
			img.SetNRGBA(px, py, blend(fg, bg, a))
		}
	}
	return img
}

// blend mixes fg over bg with coverage a, in non-premultiplied colour.
func blend(fg, bg color.NRGBA, a float64) color.NRGBA {
	fa := a * float64(fg.A) / 255
	ba := float64(bg.A) / 255 * (1 - fa)
	outA := fa + ba
	if outA == 0 {
		return color.NRGBA{}
	}
	mix := func(f, b uint8) uint8 {
		return uint8(math.Round((float64(f)*fa + float64(b)*ba) / outA))
	}
	return color.NRGBA{R: mix(fg.R, bg.R), G: mix(fg.G, bg.G), B: mix(fg.B, bg.B), A: uint8(math.Round(outA * 255))}
}

// Icons returns the two PNGs Teams requires: color (192×192, white mark on the accent colour)
// and outline (32×32, white mark on a transparent background).
func Icons() (colorPNG, outlinePNG []byte, err error) {
	white := color.NRGBA{R: 0xFF, G: 0xFF, B: 0xFF, A: 0xFF}
	enc := func(img image.Image) ([]byte, error) {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			return nil, fmt.Errorf("encode icon: %w", err)
		}
		return b.Bytes(), nil
	}
	if colorPNG, err = enc(draw(192, white, accent)); err != nil {
		return nil, nil, err
	}
	if outlinePNG, err = enc(draw(32, white, color.NRGBA{})); err != nil {
		return nil, nil, err
	}
	return colorPNG, outlinePNG, nil
}

// WriteIcons writes color.png and outline.png into dir.
func WriteIcons(dir string) error {
	c, o, err := Icons()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "color.png"), c, 0o644); err != nil {
		return fmt.Errorf("write icons: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "outline.png"), o, 0o644); err != nil {
		return fmt.Errorf("write icons: %w", err)
	}
	return nil
}
