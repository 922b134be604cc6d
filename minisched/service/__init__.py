"""What the REST API and the web UI both do: set-based reads of the metadata tables, and the changes
they may make (pause, trigger, clear, mark, pools), each writing its audit row. Neither entry point
holds SQL of its own."""
