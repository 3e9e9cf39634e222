"""Catalog (事项): departments, matters and their versioned guides, bundles, search."""
