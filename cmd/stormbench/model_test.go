package main

import (
	"math"
	"testing"
)

func TestLinearFitExact(t *testing.T) {
	xs := []float64{1, 4, 16, 64}
	ys := make([]float64, len(xs))
	for i, x := range xs {
		ys[i] = 3e6 + 4.5e6*x
	}
	f, err := linearFit(xs, ys)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(f.A-3e6) > 1 || math.Abs(f.B-4.5e6) > 1e-3 || math.Abs(f.R2-1) > 1e-12 {
		t.Errorf("fit = %+v, want a=3e6 b=4.5e6 R²=1", f)
	}
	if got := f.at(255); math.Abs(got-(3e6+4.5e6*255)) > 1 {
		t.Errorf("at(255) = %v", got)
	}
}

func TestPowerFitExact(t *testing.T) {
	xs := []float64{1, 4, 16, 64}
	ys := make([]float64, len(xs))
	for i, x := range xs {
		ys[i] = 2e6 * math.Pow(x, 1.3)
	}
	f, err := powerFit(xs, ys)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(f.B-1.3) > 1e-9 || math.Abs(f.A/2e6-1) > 1e-9 || f.R2 < 1-1e-9 {
		t.Errorf("fit = %+v, want a=2e6 b=1.3 R²=1", f)
	}
	b, other, err := best(xs, ys)
	if err != nil || b.Kind != "power" || other.Kind != "linear" || other.R2 >= b.R2 {
		t.Errorf("best = %+v (other %+v, err %v), want the power model", b, other, err)
	}
}

func TestFitR2Imperfect(t *testing.T) {
	f, err := linearFit([]float64{1, 2, 3, 4}, []float64{1, 3, 2, 4})
	if err != nil {
		t.Fatal(err)
	}
	// slope 0.8, intercept 0.5; SS_res = 1.8, SS_tot = 5.
	if math.Abs(f.B-0.8) > 1e-12 || math.Abs(f.A-0.5) > 1e-12 || math.Abs(f.R2-0.64) > 1e-12 {
		t.Errorf("fit = %+v, want b=0.8 a=0.5 R²=0.64", f)
	}
}

func TestFitTooFew(t *testing.T) {
	if _, err := linearFit([]float64{4, 4}, []float64{1, 2}); err == nil {
		t.Error("one distinct x: no error")
	}
	if _, err := powerFit([]float64{0, 4}, []float64{1, 2}); err == nil {
		t.Error("one usable point: no error")
	}
}
