"""Records to artefacts: report.json, the model card, figures, the site. No torch."""
