package main

import (
	"errors"
	"math"
)

// fit is a least-squares model y = f(x) with its coefficient of determination.
type fit struct {
	Kind string  // "linear" (y = a + b x) or "power" (y = a x^b, fitted on logs)
	A, B float64 // coefficients
	R2   float64 // R² on the measured points, in y's own units
	N    int
}

// at evaluates the model at x.
func (f fit) at(x float64) float64 {
	if f.Kind == "power" {
		return f.A * math.Pow(x, f.B)
	}
	return f.A + f.B*x
}

var errFewPoints = errors.New("fit: need at least two distinct x values")

// linearFit fits y = a + b x by ordinary least squares.
func linearFit(xs, ys []float64) (fit, error) {
	n := float64(len(xs))
	if len(xs) != len(ys) || len(xs) < 2 {
		return fit{}, errFewPoints
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return fit{}, errFewPoints
	}
	b := (n*sxy - sx*sy) / d
	a := (sy - b*sx) / n
	f := fit{Kind: "linear", A: a, B: b, N: len(xs)}
	f.R2 = r2(f, xs, ys)
	return f, nil
}

// powerFit fits y = a x^b by least squares on (ln x, ln y); points with x or y <= 0 are skipped.
// R² is computed on y itself so that it compares with linearFit's.
func powerFit(xs, ys []float64) (fit, error) {
	var lx, ly []float64
	for i := range xs {
		if xs[i] > 0 && ys[i] > 0 {
			lx = append(lx, math.Log(xs[i]))
			ly = append(ly, math.Log(ys[i]))
		}
	}
	l, err := linearFit(lx, ly)
	if err != nil {
		return fit{}, err
	}
	f := fit{Kind: "power", A: math.Exp(l.A), B: l.B, N: len(lx)}
	f.R2 = r2(f, xs, ys)
	return f, nil
}

// r2 is 1 - SS_res/SS_tot of f on the points.
func r2(f fit, xs, ys []float64) float64 {
	var mean float64
	for _, y := range ys {
		mean += y
	}
	mean /= float64(len(ys))
	var res, tot float64
	for i := range xs {
		d := ys[i] - f.at(xs[i])
		res += d * d
		t := ys[i] - mean
		tot += t * t
	}
	if tot == 0 {
		if res == 0 {
			return 1
		}
		return 0
	}
	return 1 - res/tot
}

// best returns the better-fitting of the linear and power models.
func best(xs, ys []float64) (fit, fit, error) {
	l, err := linearFit(xs, ys)
	if err != nil {
		return fit{}, fit{}, err
	}
	p, err := powerFit(xs, ys)
	if err != nil || l.R2 >= p.R2 {
		return l, p, nil
	}
	return p, l, nil
}
