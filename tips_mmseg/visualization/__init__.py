from .shift_heatmap import (consistency_grid, draw_consistency_map,
                            plot_consistency_map)

__all__ = ['consistency_grid', 'draw_consistency_map', 'plot_consistency_map']
