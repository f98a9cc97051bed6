"""Real time: Graph change notifications (intake, queue, worker), the subscription keeper and
the assignment watch. Everything that decides lives here; the triggers only translate."""
