// DebugReport::to_html: one self-contained page, inline SVG, no scripts, no network.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "engine/debug.h"

namespace engine {

namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string num(double v, int prec = 2) {
  if (!std::isfinite(v)) return v > 0 ? "inf" : "-inf";
  std::ostringstream o;
  o << std::fixed << std::setprecision(prec) << v;
  return o.str();
}

constexpr const char* kAcc = "#3b6fb6";  // accumulated
constexpr const char* kIso = "#e07b39";  // isolated
constexpr const char* kBad = "#c0392b";

// Horizontal bars, one row per layer, up to two series; values in dB (>= 0 drawn from 0).
std::string bar_chart(const std::vector<std::string>& labels,
                      const std::vector<std::vector<double>>& series,
                      const std::vector<const char*>& colors, const std::string& unit) {
  const int label_w = 330, plot_w = 520, row_h = 8 * int(series.size()) + 6, top = 22;
  double mx = 1;
  for (const auto& s : series)
    for (double v : s)
      if (std::isfinite(v)) mx = std::max(mx, std::min(v, 120.0));
  mx = std::ceil(mx / 20) * 20;  // four ticks at multiples of 5
  const int h = top + row_h * int(labels.size()) + 8;
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << label_w + plot_w + 60 << "' height='"
    << h << "' font-family='sans-serif' font-size='10'>";
  for (int t = 0; t <= 4; ++t) {
    const double v = mx * t / 4;
    const double x = label_w + plot_w * v / mx;
    o << "<line x1='" << x << "' y1='" << top - 4 << "' x2='" << x << "' y2='" << h - 8
      << "' stroke='#ddd'/><text x='" << x << "' y='" << top - 8 << "' text-anchor='middle'>"
      << num(v, 0) << (t == 4 ? " " + unit : "") << "</text>";
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    const int y = top + row_h * int(i);
    std::string l = labels[i];
    if (l.size() > 52) l = "..." + l.substr(l.size() - 49);
    o << "<text x='" << label_w - 6 << "' y='" << y + row_h / 2 + 3 << "' text-anchor='end'>"
      << esc(l) << "</text>";
    for (size_t k = 0; k < series.size(); ++k) {
      const double v = series[k][i];
      if (!std::isfinite(v)) continue;
      const double w = plot_w * std::clamp(v, 0.0, mx) / mx;
      o << "<rect x='" << label_w << "' y='" << y + 3 + 8 * int(k) << "' width='" << w
        << "' height='7' fill='" << colors[k] << "'><title>" << esc(labels[i]) << ": " << num(v)
        << " " << unit << "</title></rect>";
    }
  }
  o << "</svg>";
  return o.str();
}

// Histogram (log counts) with the clipping range as two red lines.
std::string histogram(const LayerDebug& l) {
  const int w = 420, h = 120, pad = 24;
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << w << "' height='" << h + pad
    << "' font-family='sans-serif' font-size='10'>";
  double mx = 1;
  for (int64_t c : l.hist) mx = std::max(mx, std::log1p(double(c)));
  const double lo = std::min(l.hist_lo, l.clip_lo), hi = std::max(l.hist_hi, l.clip_hi);
  const double span = hi > lo ? hi - lo : 1;
  auto X = [&](double v) { return 4 + (w - 8) * (v - lo) / span; };
  const double bw = (X(l.hist_hi) - X(l.hist_lo)) / double(std::max<size_t>(1, l.hist.size()));
  for (size_t k = 0; k < l.hist.size(); ++k) {
    const double bh = (h - 10) * std::log1p(double(l.hist[k])) / mx;
    o << "<rect x='" << X(l.hist_lo) + bw * double(k) << "' y='" << h - bh << "' width='"
      << std::max(bw - 0.5, 0.5) << "' height='" << bh << "' fill='" << kAcc << "'/>";
  }
  for (double c : {l.clip_lo, l.clip_hi})
    o << "<line x1='" << X(c) << "' y1='0' x2='" << X(c) << "' y2='" << h << "' stroke='" << kBad
      << "' stroke-width='2'/>";
  o << "<text x='4' y='" << h + 14 << "'>" << num(lo, 3) << "</text><text x='" << w - 4 << "' y='"
    << h + 14 << "' text-anchor='end'>" << num(hi, 3) << "</text><text x='" << w / 2 << "' y='"
    << h + 14 << "' text-anchor='middle' fill='" << kBad << "'>clip [" << num(l.clip_lo, 3) << ", "
    << num(l.clip_hi, 3) << "] (" << esc(l.observer) << ")</text></svg>";
  return o.str();
}

// Max |w| per output channel as vertical bars.
std::string weight_ranges(const quant::WeightReport& w) {
  const int width = 420, h = 110;
  const auto& m = w.channel_max;
  const double mx = std::max(1e-30, double(*std::max_element(m.begin(), m.end())));
  const double bw = double(width - 8) / double(m.size());
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << h + 16
    << "' font-family='sans-serif' font-size='10'>";
  for (size_t c = 0; c < m.size(); ++c) {
    const double bh = (h - 6) * double(m[c]) / mx;
    o << "<rect x='" << 4 + bw * double(c) << "' y='" << h - bh << "' width='"
      << std::max(bw - 0.3, 0.3) << "' height='" << bh << "' fill='" << kIso << "'><title>channel "
      << c << ": " << m[c] << "</title></rect>";
  }
  o << "<text x='4' y='" << h + 13 << "'>" << m.size() << " output channels, max |w| " << num(mx, 4)
    << ", spread " << num(w.spread, 1) << "x</text></svg>";
  return o.str();
}

}  // namespace

std::string DebugReport::to_html(const std::string& title) const {
  std::ostringstream o;
  o << "<!DOCTYPE html><html><head><meta charset='utf-8'><title>" << esc(title)
    << "</title><style>body{font-family:sans-serif;margin:24px;color:#222}"
       "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px "
       "6px;text-align:right}td.l,th.l{text-align:left}.warn{color:#c0392b}"
       "details{margin:6px 0}summary{cursor:pointer}.key span{display:inline-block;width:12px;"
       "height:10px;margin:0 4px 0 12px}</style></head><body>";
  o << "<h1>INT8 vs FP32: " << esc(title) << "</h1><p>" << samples << " samples";
  if (labeled > 0)
    o << "; top-1 FP32 <b>" << num(fp32_top1) << " %</b>, INT8 <b>" << num(int8_top1) << " %</b> ("
      << labeled << " labeled)";
  o << ". Final output: SQNR <b>" << num(final_output.sqnr_db()) << " dB</b>, cosine "
    << num(final_output.cosine(), 5) << ", max |error| " << num(final_output.max_abs, 4) << ".</p>";

  std::vector<std::string> names;
  std::vector<double> acc, iso, fin;
  for (const LayerDebug& l : layers) {
    names.push_back(l.node + " (" + l.op_type + ")");
    acc.push_back(l.accumulated.count ? l.accumulated.sqnr_db() : NAN);
    iso.push_back(l.has_isolated ? l.isolated.sqnr_db() : NAN);
    fin.push_back(l.has_isolated ? l.isolated_final.sqnr_db() : NAN);
  }
  o << "<h2>Per-layer SQNR (higher is better), graph order</h2><p class='key'><span style="
       "'background:"
    << kAcc << "'></span>accumulated (whole graph INT8)<span style='background:" << kIso
    << "'></span>isolated (only this layer INT8)</p>"
    << bar_chart(names, {acc, iso}, {kAcc, kIso}, "dB");
  bool any_iso = false;
  for (const LayerDebug& l : layers) any_iso = any_iso || l.has_isolated;
  if (any_iso)
    o << "<h2>Isolated mode: SQNR of the final output with only this layer INT8 (lower = more "
         "damaging)</h2>"
      << bar_chart(names, {fin}, {kIso}, "dB");

  o << "<h2>Most damaging layers</h2><table><tr><th>rank</th><th class='l'>accumulated: dB "
       "lost</th><th></th><th class='l'>isolated: final-output SQNR</th><th></th></tr>";
  const std::vector<int> ra = ranked_accumulated(), ri = ranked_isolated();
  for (size_t k = 0; k < 10 && (k < ra.size() || k < ri.size()); ++k) {
    o << "<tr><td>" << k + 1 << "</td>";
    if (k < ra.size())
      o << "<td class='l'>" << esc(layers[size_t(ra[k])].node) << "</td><td>"
        << num(layers[size_t(ra[k])].lost_db()) << " dB</td>";
    else
      o << "<td></td><td></td>";
    if (k < ri.size())
      o << "<td class='l'>" << esc(layers[size_t(ri[k])].node) << "</td><td>"
        << num(layers[size_t(ri[k])].isolated_final.sqnr_db()) << " dB</td>";
    else
      o << "<td></td><td></td>";
    o << "</tr>";
  }
  o << "</table>";

  o << "<h2>All layers</h2><table><tr><th class='l'>layer</th><th class='l'>op</th><th>SQNR "
       "dB</th><th>lost dB</th><th>cosine</th><th>MSE</th><th>max err</th><th>isolated dB</th>"
       "<th>final dB</th>";
  if (labeled > 0) o << "<th>top-1 %</th>";
  o << "<th>w spread</th><th>w SQNR</th><th class='l'>warnings</th></tr>";
  for (const LayerDebug& l : layers) {
    o << "<tr><td class='l'>" << esc(l.node) << "</td><td class='l'>" << esc(l.op_type)
      << "</td><td>" << num(l.accumulated.sqnr_db()) << "</td><td>" << num(l.lost_db())
      << "</td><td>" << num(l.accumulated.cosine(), 5) << "</td><td>" << std::scientific
      << std::setprecision(2) << l.accumulated.mse() << std::fixed << "</td><td>"
      << num(l.accumulated.max_abs, 4) << "</td><td>"
      << (l.has_isolated ? num(l.isolated.sqnr_db()) : "") << "</td><td>"
      << (l.has_isolated ? num(l.isolated_final.sqnr_db()) : "") << "</td>";
    if (labeled > 0)
      o << "<td>" << (l.has_isolated && l.isolated_top1 >= 0 ? num(l.isolated_top1) : "")
        << "</td>";
    o << "<td>" << (l.weights ? num(l.weights->spread, 1) : "") << "</td><td>"
      << (l.weights ? num(l.weights->error.sqnr_db()) : "") << "</td><td class='l warn'>";
    for (size_t k = 0; k < l.flags.size(); ++k) o << (k ? "<br>" : "") << esc(l.flags[k]);
    o << "</td></tr>";
  }
  o << "</table>";

  o << "<h2>Activation histograms and weight ranges</h2><p>Histogram of each layer's FP32 "
       "output over the calibration data (log counts), with the clipping range the observer "
       "chose in red; max |w| per output channel.</p>";
  for (const LayerDebug& l : layers) {
    if (l.hist.empty() && !l.weights) continue;
    o << "<details" << (l.flags.empty() ? "" : " open") << "><summary>" << esc(l.node) << " ("
      << esc(l.op_type) << ")" << (l.flags.empty() ? "" : " <span class='warn'>&#9888;</span>")
      << "</summary><div>";
    if (!l.hist.empty()) o << histogram(l);
    if (l.weights && !l.weights->channel_max.empty()) o << " " << weight_ranges(*l.weights);
    o << "</div></details>";
  }
  o << "</body></html>\n";
  return o.str();
}

}  // namespace engine
