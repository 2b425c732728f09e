// critmin's partial Plotly.js bundle: the trace types its pages draw (bar, scatter,
// choropleth, sankey) and nothing else.
var Plotly = require('plotly.js/lib/core');
Plotly.register([
  require('plotly.js/lib/bar'),
  require('plotly.js/lib/choropleth'),
  require('plotly.js/lib/sankey'),
]);
module.exports = Plotly;
