"""Hall (政务服务大厅): appointments (预约) and the hall\x27s queue (叫号), ADR 0023."""
