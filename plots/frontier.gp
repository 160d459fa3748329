# frontier.gp: one speed-vs-accuracy (or size-vs-accuracy) figure of a sweep, drawn by `arbor plot`.
# Variables (gnuplot -e): points, frontier (data files written by arbor plot), out, term (pngcairo|pdfcairo),
# xlabel, ylabel, title; xmin, xmax, ymin, ymax (the axes, from the data); chance (the benchmark's chance
# level, < 0 for none); has0..has4 (whether points of that kind exist: the legend lists only those).
# points columns: x y "label" kind xlo xhi ylo yhi label_x label_y (placed by arbor plot so labels do not overlap);
# kind 0 pruned+distilled, 1 from scratch, 2 teacher, 3 baseline, 4 the same pruned model before distillation
if (term eq "pdfcairo") { set terminal pdfcairo size 6in,4in font "Helvetica,10" } else { set terminal pngcairo size 1200,800 font "Helvetica,12" }
set output out
set title title
set xlabel xlabel
set ylabel ylabel
set grid
set key outside right top
set xrange [xmin:xmax]
set yrange [ymin:ymax]
if (chance >= 0) { set arrow 1 from xmin, chance to xmax, chance nohead dt 2 lw 1.5 lc rgb "#777777"; \
                   set label 1 "chance" at xmax, chance right offset -0.5, 0.7 font ",9" textcolor rgb "#777777" }
t(has, s) = has ? s : ""
plot frontier using 1:2 with lines lw 2 lc rgb "#999999" title "Pareto frontier", \
     points using ($4 == 4 ? $1 : 1/0):2:5:6:7:8 with xyerrorbars pt 6 ps 1.5 lc rgb "#1f77b4" title t(has4, "pruned, before distillation"), \
     points using ($4 == 0 ? $1 : 1/0):2:5:6:7:8 with xyerrorbars pt 7 ps 1.5 lc rgb "#1f77b4" title t(has0, "pruned + distilled"), \
     points using ($4 == 1 ? $1 : 1/0):2:5:6:7:8 with xyerrorbars pt 5 ps 1.5 lc rgb "#ff7f0e" title t(has1, "trained from scratch"), \
     points using ($4 == 2 ? $1 : 1/0):2:5:6:7:8 with xyerrorbars pt 9 ps 2.2 lc rgb "#d62728" title t(has2, "teacher"), \
     points using ($4 == 3 ? $1 : 1/0):2:5:6:7:8 with xyerrorbars pt 13 ps 2.0 lc rgb "#2ca02c" title t(has3, "baseline"), \
     points using 9:10:3 with labels font ",9" notitle
