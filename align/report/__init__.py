"""The SFT vs SFT+DPO report: report.json -> report.md, report.html and standalone SVG plots."""
