{ dashboards: [] }
