-- AnnData (lua/velua/anndata.lua) and its files (lua/velua/io/h5ad.lua, io/loom.lua): the
-- object and its checked slots, every shared and oracle file against checksums taken from the
-- files with h5py, round trips through velua and through Python anndata 0.8 (when installed),
-- the legacy layouts, loom, and clear errors for bad input.
local velua = require "velua"
local T = velua.tensor
local core = require "velua.core"
local h = require "support.helpers"
local compare = require "support.anndata_compare"

-- Checksums of every matrix and the categories of every categorical column, computed once
-- with h5py 3.7 / numpy straight from the files (math.fsum in f64; NaNs counted, not summed).
local REF = (function()
return {
  ["data/dentategyrus_cellrank/adata_100.h5ad"] = {
   n_obs = 100, n_vars = 278,
   matrices = {
    ["X"] = { shape = {100, 278}, dtype = "f32", sparse = true, sum = 14644.749582827091, sumsq = 21960.859843683502, nan = 0 },
    ["layers/Ms"] = { shape = {100, 278}, dtype = "f32", sparse = false, sum = 40198.22698249761, sumsq = 286872.72301387682, nan = 0 },
    ["layers/Mu"] = { shape = {100, 278}, dtype = "f32", sparse = false, sum = 13453.599489107262, sumsq = 18345.948989378929, nan = 0 },
    ["layers/ambiguous"] = { shape = {100, 278}, dtype = "f32", sparse = true, sum = 23507, sumsq = 142701, nan = 0 },
    ["layers/fit_t"] = { shape = {100, 278}, dtype = "f64", sparse = false, sum = 1111186.612818897, sumsq = 467330863.42464465, nan = 15600 },
    ["layers/fit_tau"] = { shape = {100, 278}, dtype = "f64", sparse = false, sum = 388372.33824912639, sumsq = 54916975.332015082, nan = 15600 },
    ["layers/fit_tau_"] = { shape = {100, 278}, dtype = "f64", sparse = false, sum = 111737.83563997157, sumsq = 2260230.2795098741, nan = 15600 },
    ["layers/spliced"] = { shape = {100, 278}, dtype = "f32", sparse = true, sum = 40084.305890589952, sumsq = 618486.59636155947, nan = 0 },
    ["layers/unspliced"] = { shape = {100, 278}, dtype = "f32", sparse = true, sum = 13314.074570193887, sumsq = 49398.742944380683, nan = 0 },
    ["layers/velocity"] = { shape = {100, 278}, dtype = "f64", sparse = false, sum = -231.11153483614495, sumsq = 249.45944176724626, nan = 15600 },
    ["layers/velocity_u"] = { shape = {100, 278}, dtype = "f64", sparse = false, sum = -20.452911583844624, sumsq = 13.842992211772431, nan = 15600 },
    ["obsm/X_diffmap"] = { shape = {100, 15}, dtype = "f32", sparse = false, sum = 10.249961494466334, sumsq = 14.999999991620552, nan = 0 },
    ["obsm/X_pca"] = { shape = {100, 30}, dtype = "f32", sparse = false, sum = 0.00025524482771288604, sumsq = 4268.8483658352925, nan = 0 },
    ["obsm/X_umap"] = { shape = {100, 2}, dtype = "f64", sparse = false, sum = -248.67109031704106, sumsq = 7037.4412253683049, nan = 0 },
    ["varm/PCs"] = { shape = {278, 30}, dtype = "f64", sparse = false, sum = -21.496443598423337, sumsq = 30.000000239235792, nan = 0 },
    ["varm/loss"] = { shape = {278, 15}, dtype = "f64", sparse = false, sum = 97496.848305769832, sumsq = 13399295.170851173, nan = 3148 },
    ["obsp/connectivities"] = { shape = {100, 100}, dtype = "f32", sparse = true, sum = 860.4440475483425, sumsq = 415.75060739265979, nan = 0 },
    ["obsp/connectivity_variances"] = { shape = {100, 100}, dtype = "f64", sparse = false, sum = 10000, sumsq = 10000, nan = 0 },
    ["obsp/distances"] = { shape = {100, 100}, dtype = "f64", sparse = true, sum = 20850.920179367065, sumsq = 159606.99270872524, nan = 0 },
    ["obsp/velocity_graph"] = { shape = {100, 100}, dtype = "f32", sparse = true, sum = 1133.8685250442941, sumsq = 777.04746169308521, nan = 0 },
    ["obsp/velocity_graph_neg"] = { shape = {100, 100}, dtype = "f32", sparse = true, sum = -1072.2300915450614, sumsq = 707.43176069433343, nan = 0 },
    ["obsp/velocity_variances"] = { shape = {100, 100}, dtype = "f64", sparse = false, sum = 10000, sumsq = 10000, nan = 0 },
   },
   categoricals = {
    ["obs/age(days)"] = { categories = {"12", "35"}, counts = {35, 65}, missing = 0 },
    ["obs/clusters"] = { categories = {"Astrocytes", "Cajal Retzius", "Cck-Tox", "Endothelial", "GABA", "Granule immature", "Granule mature", "Microglia", "Neuroblast", "OL", "Radial Glia-like", "nIPC"}, counts = {6, 1, 1, 2, 1, 33, 38, 1, 12, 3, 1, 1}, missing = 0 },
    ["obs/clusters_enlarged"] = { categories = {"Astrocytes", "Cajal-Retzius", "Cck-Tox", "Endothelial", "GABA-Cnr1", "Granule-immature", "Granule-mature", "Microglia", "Neuroblast 1", "Neuroblast 2", "OL", "Radial Glia-like", "VLMC", "nIPC"}, counts = {6, 1, 1, 1, 1, 33, 38, 1, 2, 10, 3, 1, 1, 1}, missing = 0 },
   },
  },
  ["data/dentategyrus_cellrank/adata_50.h5ad"] = {
   n_obs = 50, n_vars = 143,
   matrices = {
    ["X"] = { shape = {50, 143}, dtype = "f32", sparse = true, sum = 5205.1151207387447, sumsq = 8624.4979483263141, nan = 0 },
    ["layers/Ms"] = { shape = {50, 143}, dtype = "f32", sparse = false, sum = 16197.721343285404, sumsq = 137763.95360438668, nan = 0 },
    ["layers/Mu"] = { shape = {50, 143}, dtype = "f32", sparse = false, sum = 4545.4461289658211, sumsq = 6990.3174826822524, nan = 0 },
    ["layers/ambiguous"] = { shape = {50, 143}, dtype = "f32", sparse = true, sum = 7719, sumsq = 57819, nan = 0 },
    ["layers/fit_t"] = { shape = {50, 143}, dtype = "f64", sparse = false, sum = 1202944.2168846792, sumsq = 1043194811.9743766, nan = 3700 },
    ["layers/fit_tau"] = { shape = {50, 143}, dtype = "f64", sparse = false, sum = 502970.32274902734, sumsq = 201202750.74572963, nan = 3700 },
    ["layers/fit_tau_"] = { shape = {50, 143}, dtype = "f64", sparse = false, sum = 38373.594720346104, sumsq = 1131686.6195308133, nan = 3700 },
    ["layers/spliced"] = { shape = {50, 143}, dtype = "f32", sparse = true, sum = 16182.243304818869, sumsq = 403833.53935807833, nan = 0 },
    ["layers/unspliced"] = { shape = {50, 143}, dtype = "f32", sparse = true, sum = 4494.8210172355175, sumsq = 19150.908756832723, nan = 0 },
    ["layers/velocity"] = { shape = {50, 143}, dtype = "f64", sparse = false, sum = 5.0196595512149376, sumsq = 3.9647928289274468, nan = 3700 },
    ["layers/velocity_u"] = { shape = {50, 143}, dtype = "f64", sparse = false, sum = -4.5808885266511252, sumsq = 1.8745302416006173, nan = 3700 },
    ["obsm/X_diffmap"] = { shape = {50, 15}, dtype = "f32", sparse = false, sum = -7.4407563615823165, sumsq = 15.000000053376157, nan = 0 },
    ["obsm/X_pca"] = { shape = {50, 30}, dtype = "f32", sparse = false, sum = -9.1360532678663731e-05, sumsq = 1846.6060531844471, nan = 0 },
    ["obsm/X_umap"] = { shape = {50, 2}, dtype = "f64", sparse = false, sum = -119.74016761912966, sumsq = 3598.6215610849808, nan = 0 },
    ["varm/PCs"] = { shape = {143, 30}, dtype = "f64", sparse = false, sum = -7.0686064393774819, sumsq = 30.000005841102475, nan = 0 },
    ["varm/loss"] = { shape = {143, 14}, dtype = "f64", sparse = false, sum = 33692.167465151368, sumsq = 3559838.1505997987, nan = 1492 },
    ["obsp/connectivities"] = { shape = {50, 50}, dtype = "f32", sparse = true, sum = 423.2152058458887, sumsq = 214.94609275744298, nan = 0 },
    ["obsp/connectivity_variances"] = { shape = {50, 50}, dtype = "f64", sparse = false, sum = 2500, sumsq = 2500, nan = 0 },
    ["obsp/distances"] = { shape = {50, 50}, dtype = "f64", sparse = true, sum = 10899.842017173767, sumsq = 85503.822279575834, nan = 0 },
    ["obsp/velocity_graph"] = { shape = {50, 50}, dtype = "f32", sparse = true, sum = 390.70259922021069, sumsq = 209.44121147568251, nan = 0 },
    ["obsp/velocity_graph_neg"] = { shape = {50, 50}, dtype = "f32", sparse = true, sum = -395.54562547570094, sumsq = 222.21951671283762, nan = 0 },
    ["obsp/velocity_variances"] = { shape = {50, 50}, dtype = "f64", sparse = false, sum = 2500, sumsq = 2500, nan = 0 },
   },
   categoricals = {
    ["obs/age(days)"] = { categories = {"12", "35"}, counts = {19, 31}, missing = 0 },
    ["obs/clusters"] = { categories = {"Astrocytes", "Cajal Retzius", "Endothelial", "Granule immature", "Granule mature", "Microglia", "Neuroblast", "OL", "nIPC"}, counts = {3, 1, 1, 18, 18, 1, 5, 2, 1}, missing = 0 },
    ["obs/clusters_enlarged"] = { categories = {"Astrocytes", "Cajal-Retzius", "Granule-immature", "Granule-mature", "Microglia", "Neuroblast 2", "OL", "VLMC", "nIPC"}, counts = {3, 1, 18, 18, 1, 5, 2, 1, 1}, missing = 0 },
   },
  },
  ["data/dentategyrus_scvelo/dentategyrus_100obs.h5ad"] = {
   n_obs = 100, n_vars = 13913,
   matrices = {
    ["X"] = { shape = {100, 13913}, dtype = "f32", sparse = true, sum = 288220, sumsq = 4522304, nan = 0 },
    ["layers/ambiguous"] = { shape = {100, 13913}, dtype = "f32", sparse = true, sum = 97858, sumsq = 469710, nan = 0 },
    ["layers/spliced"] = { shape = {100, 13913}, dtype = "f32", sparse = true, sum = 288220, sumsq = 4522304, nan = 0 },
    ["layers/unspliced"] = { shape = {100, 13913}, dtype = "f32", sparse = true, sum = 31804, sumsq = 86522, nan = 0 },
   },
   categoricals = {

   },
  },
  ["data/ifnb_kang/ifnb1k.h5ad"] = {
   n_obs = 832, n_vars = 14053,
   matrices = {
    ["X"] = { shape = {832, 14053}, dtype = "f32", sparse = true, sum = 1709980, sumsq = 109895306, nan = 0 },
   },
   categoricals = {
    ["obs/orig.ident"] = { categories = {"IMMUNE_CTRL", "IMMUNE_STIM"}, counts = {391, 441}, missing = 0 },
    ["obs/seurat_annotations"] = { categories = {"CD14 Mono", "CD4 Naive T", "CD4 Memory T", "CD16 Mono", "B", "CD8 T"}, counts = {304, 197, 109, 88, 81, 53}, missing = 0 },
    ["obs/stim"] = { categories = {"CTRL", "STIM"}, counts = {391, 441}, missing = 0 },
   },
  },
  ["data/mouse_ob_meringue/mOB.h5ad"] = {
   n_obs = 262, n_vars = 15928,
   matrices = {
    ["X"] = { shape = {262, 15928}, dtype = "f32", sparse = true, sum = 4160648, sumsq = 42547362, nan = 0 },
    ["obsm/spatial"] = { shape = {262, 2}, dtype = "f64", sparse = false, sum = 8994.3719999999994, sumsq = 167059.26840599999, nan = 0 },
   },
   categoricals = {
    ["obs/annot"] = { categories = {"1: Granular Cell Layer", "2: Mitral Cell Layer", "3: Outer Plexiform Layer", "4: Glomerular Layer", "5: Olfactory Nerve Layer"}, counts = {66, 38, 59, 50, 47}, missing = 2 },
    ["var/meringue_pattern"] = { categories = {"1", "2", "3", "4", "5"}, counts = {309, 167, 142, 109, 107}, missing = 15094 },
   },
  },
  ["data/pancreas_veloviz/pancreas.h5ad"] = {
   n_obs = 739, n_vars = 7192,
   matrices = {
    ["X"] = { shape = {739, 7192}, dtype = "f32", sparse = true, sum = 3667856, sumsq = 100665280, nan = 0 },
    ["layers/spliced"] = { shape = {739, 7192}, dtype = "f32", sparse = true, sum = 3667856, sumsq = 100665280, nan = 0 },
    ["layers/unspliced"] = { shape = {739, 7192}, dtype = "f32", sparse = true, sum = 888619, sumsq = 23078591, nan = 0 },
    ["obsm/X_pca"] = { shape = {739, 50}, dtype = "f32", sparse = false, sum = 2.1170708350837231e-06, sumsq = 421243.93556838977, nan = 0 },
   },
   categoricals = {
    ["obs/clusters"] = { categories = {"Ductal", "Ngn3 low EP", "Ngn3 high EP", "Pre-endocrine", "Beta", "Alpha", "Delta", "Epsilon"}, counts = {181, 54, 129, 110, 123, 99, 16, 27}, missing = 0 },
   },
  },
  ["data/visium_squidpy/test_data.h5ad"] = {
   n_obs = 49, n_vars = 1999,
   matrices = {
    ["X"] = { shape = {49, 1999}, dtype = "f32", sparse = true, sum = 30129.566022634506, sumsq = 56563.471201206499, nan = 0 },
    ["obsm/X_pca"] = { shape = {49, 50}, dtype = "f32", sparse = false, sum = 571.78415956627578, sumsq = 31451.502907368056, nan = 0 },
    ["obsm/X_umap"] = { shape = {49, 2}, dtype = "f32", sparse = false, sum = 1146.8087029457092, sumsq = 14040.390052845894, nan = 0 },
    ["obsm/spatial"] = { shape = {49, 2}, dtype = "i64", sparse = false, sum = 68363, sumsq = 60918207, nan = 0 },
    ["obsp/connectivities"] = { shape = {49, 49}, dtype = "f32", sparse = true, sum = 159.21979620936327, sumsq = 102.15917294695635, nan = 0 },
    ["obsp/distances"] = { shape = {49, 49}, dtype = "f64", sparse = true, sum = 4808.7331991195679, sumsq = 112390.90576378896, nan = 0 },
   },
   categoricals = {
    ["obs/leiden"] = { categories = {"0", "2", "6", "7", "9"}, counts = {27, 19, 1, 1, 1}, missing = 0 },
   },
  },
  ["oracle/dentategyrus100_scvelo.h5ad"] = {
   n_obs = 100, n_vars = 298,
   matrices = {
    ["X"] = { shape = {100, 298}, dtype = "f32", sparse = true, sum = 15267.497002229095, sumsq = 22896.480461530675, nan = 0 },
    ["layers/Ms"] = { shape = {100, 298}, dtype = "f32", sparse = false, sum = 41166.397857736563, sumsq = 256278.01668209527, nan = 0 },
    ["layers/Mss"] = { shape = {100, 298}, dtype = "f32", sparse = false, sum = 422239.5210951675, sumsq = 266551756.76017678, nan = 0 },
    ["layers/Mu"] = { shape = {100, 298}, dtype = "f32", sparse = false, sum = 12759.463872073684, sumsq = 17128.843195691814, nan = 0 },
    ["layers/Mus"] = { shape = {100, 298}, dtype = "f32", sparse = false, sum = 17646.566974984482, sumsq = 128091.1491344328, nan = 0 },
    ["layers/ambiguous"] = { shape = {100, 298}, dtype = "f32", sparse = true, sum = 21958, sumsq = 150750, nan = 0 },
    ["layers/spliced"] = { shape = {100, 298}, dtype = "f32", sparse = true, sum = 41107.53023481369, sumsq = 436424.54361037089, nan = 0 },
    ["layers/unspliced"] = { shape = {100, 298}, dtype = "f32", sparse = true, sum = 12654.813581228256, sumsq = 52826.489284415584, nan = 0 },
    ["layers/velocity"] = { shape = {100, 298}, dtype = "f32", sparse = false, sum = 45.321871051572089, sumsq = 3821.4605529756236, nan = 0 },
    ["layers/velocity_det"] = { shape = {100, 298}, dtype = "f32", sparse = false, sum = 186.27746069929708, sumsq = 3688.5522402265283, nan = 0 },
    ["obsm/X_pca"] = { shape = {100, 30}, dtype = "f32", sparse = false, sum = -0.00019744272867683321, sumsq = 4899.5436668488965, nan = 0 },
    ["obsm/X_umap"] = { shape = {100, 2}, dtype = "f32", sparse = false, sum = 1243.9115027189255, sumsq = 10160.548147503163, nan = 0 },
    ["obsm/velocity_det_pca"] = { shape = {100, 30}, dtype = "f64", sparse = false, sum = -27.029401668580249, sumsq = 5.9509105175866113, nan = 0 },
    ["obsm/velocity_det_umap"] = { shape = {100, 2}, dtype = "f64", sparse = false, sum = -13.929097497835755, sumsq = 20.449966174154181, nan = 0 },
    ["obsm/velocity_pca"] = { shape = {100, 30}, dtype = "f64", sparse = false, sum = -24.770981300214771, sumsq = 7.2478776887070877, nan = 0 },
    ["obsm/velocity_umap"] = { shape = {100, 2}, dtype = "f64", sparse = false, sum = 4.8900887668132782, sumsq = 22.77300390203866, nan = 0 },
    ["varm/PCs"] = { shape = {298, 30}, dtype = "f64", sparse = false, sum = -1.8545046838221639, sumsq = 30.000000000000011, nan = 0 },
    ["obsp/T_velocity"] = { shape = {100, 100}, dtype = "f32", sparse = true, sum = 99.999999781546649, sumsq = 3.6908349949201682, nan = 0 },
    ["obsp/T_velocity_negcos"] = { shape = {100, 100}, dtype = "f32", sparse = true, sum = 57.033315142002323, sumsq = 3.0087096077546849, nan = 0 },
    ["obsp/connectivities"] = { shape = {100, 100}, dtype = "f32", sparse = true, sum = 845.9144283272326, sumsq = 436.2651632869821, nan = 0 },
    ["obsp/distances"] = { shape = {100, 100}, dtype = "f32", sparse = true, sum = 21930.032452583313, sumsq = 175679.81606014175, nan = 0 },
    ["obsp/moments_operator"] = { shape = {100, 100}, dtype = "f32", sparse = true, sum = 100.0000009201467, sumsq = 2.5710533995613991, nan = 0 },
    ["obsp/velocity_det_graph"] = { shape = {100, 100}, dtype = "f32", sparse = true, sum = 458.86185164758535, sumsq = 57.980083812118558, nan = 0 },
    ["obsp/velocity_det_graph_neg"] = { shape = {100, 100}, dtype = "f32", sparse = true, sum = -101.27371662268888, sumsq = 7.258278691614195, nan = 0 },
    ["obsp/velocity_graph"] = { shape = {100, 100}, dtype = "f32", sparse = true, sum = 658.88547686700349, sumsq = 127.78208306998842, nan = 0 },
    ["obsp/velocity_graph_neg"] = { shape = {100, 100}, dtype = "f32", sparse = true, sum = -250.97736589765191, sumsq = 35.374930869329781, nan = 0 },
   },
   categoricals = {

   },
  },
  ["oracle/pancreas_scvelo.h5ad"] = {
   n_obs = 739, n_vars = 2000,
   matrices = {
    ["X"] = { shape = {739, 2000}, dtype = "f32", sparse = true, sum = 497754.97273924947, sumsq = 731939.55484221573, nan = 0 },
    ["layers/Ms"] = { shape = {739, 2000}, dtype = "f32", sparse = false, sum = 1504255.7142518291, sumsq = 37221881.414627865, nan = 0 },
    ["layers/Mu"] = { shape = {739, 2000}, dtype = "f32", sparse = false, sum = 447640.51989253145, sumsq = 6888052.1704087555, nan = 0 },
    ["layers/spliced"] = { shape = {739, 2000}, dtype = "f32", sparse = true, sum = 1507158.1312561035, sumsq = 58745714.181221068, nan = 0 },
    ["layers/unspliced"] = { shape = {739, 2000}, dtype = "f32", sparse = true, sum = 447726.58443236351, sumsq = 8852975.9441172257, nan = 0 },
    ["layers/velocity"] = { shape = {739, 2000}, dtype = "f32", sparse = false, sum = 62927.088621712406, sumsq = 468305.27599941217, nan = 0 },
    ["layers/velocity_det"] = { shape = {739, 2000}, dtype = "f32", sparse = false, sum = 30731.547816085429, sumsq = 440678.70393016341, nan = 0 },
    ["obsm/X_pca"] = { shape = {739, 30}, dtype = "f32", sparse = false, sum = 0.00018497920245863497, sumsq = 92938.360188943683, nan = 0 },
    ["obsm/X_umap"] = { shape = {739, 2}, dtype = "f32", sparse = false, sum = 8938.0187926962972, sumsq = 97361.920351638051, nan = 0 },
    ["obsm/velocity_det_pca"] = { shape = {739, 30}, dtype = "f64", sparse = false, sum = 8.8298596431848182, sumsq = 34.356637106882189, nan = 0 },
    ["obsm/velocity_det_umap"] = { shape = {739, 2}, dtype = "f64", sparse = false, sum = 151.6005061224314, sumsq = 125.50719606445259, nan = 0 },
    ["obsm/velocity_pca"] = { shape = {739, 30}, dtype = "f64", sparse = false, sum = -0.59841905339271761, sumsq = 83.788888075973688, nan = 0 },
    ["obsm/velocity_umap"] = { shape = {739, 2}, dtype = "f64", sparse = false, sum = 320.75676591694355, sumsq = 304.6467334951048, nan = 0 },
    ["varm/PCs"] = { shape = {2000, 30}, dtype = "f64", sparse = false, sum = 53.620041234247978, sumsq = 29.999999999999993, nan = 0 },
    ["obsp/T_velocity"] = { shape = {739, 739}, dtype = "f32", sparse = true, sum = 739.00000053854455, sumsq = 13.098009447408923, nan = 0 },
    ["obsp/T_velocity_negcos"] = { shape = {739, 739}, dtype = "f32", sparse = true, sum = 605.42335828599357, sumsq = 13.008503783152332, nan = 0 },
    ["obsp/connectivities"] = { shape = {739, 739}, dtype = "f32", sparse = true, sum = 6185.0536633365537, sumsq = 3060.3834894960501, nan = 0 },
    ["obsp/distances"] = { shape = {739, 739}, dtype = "f32", sparse = true, sum = 148515.72038555145, sumsq = 1114389.7306788769, nan = 0 },
    ["obsp/moments_operator"] = { shape = {739, 739}, dtype = "f32", sparse = true, sum = 739.00000699795783, sumsq = 19.182575733799268, nan = 0 },
    ["obsp/velocity_det_graph"] = { shape = {739, 739}, dtype = "f32", sparse = true, sum = 8383.0459715870784, sumsq = 2439.8146351918376, nan = 0 },
    ["obsp/velocity_det_graph_neg"] = { shape = {739, 739}, dtype = "f32", sparse = true, sum = -2971.6720306344268, sumsq = 918.69322862055515, nan = 0 },
    ["obsp/velocity_graph"] = { shape = {739, 739}, dtype = "f32", sparse = true, sum = 11693.578678204063, sumsq = 2465.6567010721969, nan = 0 },
    ["obsp/velocity_graph_neg"] = { shape = {739, 739}, dtype = "f32", sparse = true, sum = -1910.6386587915383, sumsq = 300.89170514685458, nan = 0 },
   },
   categoricals = {
    ["obs/clusters"] = { categories = {"Ductal", "Ngn3 low EP", "Ngn3 high EP", "Pre-endocrine", "Beta", "Alpha", "Delta", "Epsilon"}, counts = {181, 54, 129, 110, 123, 99, 16, 27}, missing = 0 },
   },
  },
}
end)()

local function tmpname(suffix)
  local p = os.tmpname()
  os.remove(p)
  return p .. (suffix or ".h5ad")
end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

-- sum, sum of squares (NaN skipped) and NaN count of a matrix, in f64
local function checksum(m)
  local v = T.is_sparse(m) and m:values() or m
  v = core.to(v, "f64")
  local nan = core.isnan(v)
  local n_nan = core.numel(v) > 0 and core.item(core.sum(core.to(nan, "i64"))) or 0
  v = core.where(nan, 0, v)
  if core.numel(v) == 0 then return 0, 0, 0 end
  return core.item(core.sum(v)), core.item(core.sum(core.mul(v, v))), n_nan
end

local function dtype_of(m) return T.is_sparse(m) and m:dtype() or core.dtype(m) end
local function shape_of(m) return T.is_sparse(m) and m:shape() or core.shape(m) end

local same, same_anndata = compare.same, compare.same_anndata

-- Run by /usr/bin/python3 with anndata 0.8: checks velua's own small file, then compares each
-- original file with velua's rewrite of it, element by element (integer widths may differ).
local PY_COMPARE = [==[
import sys, warnings
from collections.abc import Mapping
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd, scipy.sparse as sp, anndata

errs = []
def err(where, msg):
    if len(errs) < 20: errs.append(f"{where}: {msg}")

def same_kind(x, y):
    kx, ky = x.dtype.kind, y.dtype.kind
    ints = set("iu")
    if kx in ints and ky in ints: return True
    if kx == ky == "f": return x.dtype == y.dtype
    if kx in "OSU" and ky in "OSU": return True
    return kx == ky

def cmp_array(x, y, where):
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape: return err(where, f"shape {x.shape} vs {y.shape}")
    if not same_kind(x, y): return err(where, f"dtype {x.dtype} vs {y.dtype}")
    if x.dtype.kind in "OSU" or y.dtype.kind in "OSU":
        xs = [str(v) for v in x.ravel()]; ys = [str(v) for v in y.ravel()]
        if xs != ys: err(where, "strings differ")
    elif x.dtype.kind == "f":
        if not np.array_equal(x, y, equal_nan=True): err(where, "values differ")
    elif not np.array_equal(x, y): err(where, "values differ")

def cmp(x, y, where):
    if sp.issparse(x) or sp.issparse(y):
        if not (sp.issparse(x) and sp.issparse(y)): return err(where, "sparse vs dense")
        x, y = sp.csr_matrix(x), sp.csr_matrix(y)
        if x.shape != y.shape: return err(where, f"shape {x.shape} vs {y.shape}")
        if x.dtype != y.dtype: return err(where, f"dtype {x.dtype} vs {y.dtype}")
        cmp_array(x.indptr, y.indptr, where + ".indptr")
        cmp_array(x.indices, y.indices, where + ".indices")
        cmp_array(x.data, y.data, where + ".data")
    elif isinstance(x, pd.DataFrame):
        if not isinstance(y, pd.DataFrame): return err(where, "dataframe vs " + type(y).__name__)
        if list(x.index) != list(y.index): err(where, "index differs")
        if list(x.columns) != list(y.columns): return err(where, f"columns {list(x.columns)} vs {list(y.columns)}")
        for c in x.columns: cmp(x[c], y[c], f"{where}[{c}]")
    elif isinstance(x, pd.Series):
        if isinstance(x.dtype, pd.CategoricalDtype):
            if not isinstance(y.dtype, pd.CategoricalDtype): return err(where, "categorical vs " + str(y.dtype))
            cmp_array(np.asarray(x.cat.categories), np.asarray(y.cat.categories), where + ".categories")
            cmp_array(x.cat.codes.values.astype(np.int64), y.cat.codes.values.astype(np.int64), where + ".codes")
            if x.cat.ordered != y.cat.ordered: err(where, "ordered differs")
        else:
            cmp_array(x.values, y.values, where)
    elif isinstance(x, Mapping):
        if not isinstance(y, Mapping): return err(where, "dict vs " + type(y).__name__)
        if sorted(x) != sorted(y): return err(where, f"keys {sorted(x)} vs {sorted(y)}")
        for k in x: cmp(x[k], y[k], f"{where}/{k}")
    elif isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        cmp_array(x, y, where)
    else:
        if isinstance(x, (float, np.floating)) and np.isnan(x) and np.isnan(y): return
        if x != y or type(x) != type(y) and not (np.isscalar(x) and np.isscalar(y)):
            err(where, f"{x!r} vs {y!r}")

def compare(pa, pb):
    errs.clear()
    a, b = anndata.read_h5ad(pa), anndata.read_h5ad(pb)
    if a.shape != b.shape: err("shape", f"{a.shape} vs {b.shape}")
    if a.X is None or b.X is None:
        if (a.X is None) != (b.X is None): err("X", "missing on one side")
    else: cmp(a.X, b.X, "X")
    cmp(a.obs, b.obs, "obs"); cmp(a.var, b.var, "var")
    for slot in ["layers", "obsm", "varm", "obsp", "varp"]:
        cmp(dict(getattr(a, slot)), dict(getattr(b, slot)), slot)
    cmp(dict(a.uns), dict(b.uns), "uns")
    if (a.raw is None) != (b.raw is None): err("raw", "missing on one side")
    elif a.raw is not None:
        cmp(a.raw.X, b.raw.X, "raw.X"); cmp(a.raw.var, b.raw.var, "raw.var")
    return list(errs)

# velua's own small AnnData: the values it was built with
o = anndata.read_h5ad(sys.argv[1])
assert o.shape == (3, 4), o.shape
assert list(o.obs_names) == ["c1", "c2", "c3"] and list(o.var_names) == ["g1", "g2", "g3", "g4"]
assert np.array_equal(o.X, np.array([[1, 0, 2, 0], [0, 3, 0, 4], [5, 0, 0, 6]], dtype=np.float32))
assert o.X.dtype == np.float32
assert sp.issparse(o.layers["spliced"]) and np.array_equal(o.layers["spliced"].toarray(), o.X)
assert list(o.obs["clusters"].cat.categories) == ["a", "b"]
assert list(o.obs["clusters"].astype(object).fillna("NA")) == ["a", "b", "NA"]
assert list(o.obs["level"].cat.categories) == [10, 20] and o.obs["level"].cat.ordered
assert str(o.obs["score"].dtype) == "Int64" and o.obs["score"].isna().tolist() == [False, True, False]
assert list(o.obs["barcode"]) == ["AAA", "CCC", "GGG"]
assert o.var["highly_variable"].dtype == bool and o.var["highly_variable"].tolist() == [True, False, True, True]
assert o.obsm["X_pca"].shape == (3, 2) and o.varm["PCs"].shape == (4, 2)
assert sp.issparse(o.obsp["distances"])
assert list(o.uns["clusters_colors"]) == ["#ff0000", "#00ff00"]
assert o.uns["params"]["n"] == 30 and o.uns["params"]["method"] == "umap" and bool(o.uns["params"]["flag"])
print("own ok")
args = sys.argv[2:]
for i in range(0, len(args), 2):
    e = compare(args[i], args[i + 1])
    print(("SAME " + args[i]) if not e else ("DIFF " + args[i] + ": " + "; ".join(e)))
]==]

local function small_anndata()
  return velua.AnnData {
    X = T.tensor({ { 1, 0, 2, 0 }, { 0, 3, 0, 4 }, { 5, 0, 0, 6 } }),
    obs = { clusters = { codes = T.tensor({ 1, 2, 0 }, { dtype = "i64" }), categories = { "a", "b" } },
      n_counts = T.tensor({ 3, 7, 11 }, { dtype = "f64" }), barcode = { "AAA", "CCC", "GGG" } },
    var = { highly_variable = T.tensor({ true, false, true, true }) },
    obs_names = { "c1", "c2", "c3" }, var_names = { "g1", "g2", "g3", "g4" },
    layers = { spliced = T.sparse_from_dense(T.tensor({ { 1, 0, 2, 0 }, { 0, 3, 0, 4 }, { 5, 0, 0, 6 } })) },
    obsm = { X_pca = T.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } }) },
    varm = { PCs = T.zeros(4, 2) },
    obsp = { distances = T.sparse_from_dense(T.eye(3)) },
    uns = { clusters_colors = { "#ff0000", "#00ff00" }, params = { n = 30, method = "umap", flag = true } },
  }
end

describe("velua.AnnData", function()
  it("holds the slots with their sizes and prints like anndata", function()
    local ad = small_anndata()
    assert.are.equal(3, ad.n_obs)
    assert.are.equal(4, ad.n_vars)
    assert.are.same({ "c1", "c2", "c3" }, ad.obs_names)
    assert.are.same({ 1, 2, 0 }, ad.obs.clusters.codes:totable())
    assert.are.equal(
      "AnnData object with n_obs × n_vars = 3 × 4\n"
        .. "    obs: 'barcode', 'clusters', 'n_counts'\n"
        .. "    var: 'highly_variable'\n"
        .. "    uns: 'clusters_colors', 'params'\n"
        .. "    obsm: 'X_pca'\n"
        .. "    varm: 'PCs'\n"
        .. "    layers: 'spliced'\n"
        .. "    obsp: 'distances'", tostring(ad))
    assert.are.equal("AnnData object with n_obs × n_vars = 0 × 0", tostring(velua.AnnData {}))
    -- insertion order is kept
    ad.layers.Ms = T.zeros(3, 4)
    ad.layers.Mu = T.zeros(3, 4)
    assert.are.same({ "spliced", "Ms", "Mu" }, velua.AnnData.keys(ad.layers))
    ad.layers.Ms = nil
    assert.are.same({ "spliced", "Mu" }, velua.AnnData.keys(ad.layers))
    local seen = {}
    for k in pairs(ad.layers) do seen[#seen + 1] = k end
    assert.are.same({ "spliced", "Mu" }, seen)
  end)

  it("checks shapes on assignment and names the slot, key and both shapes", function()
    local ad = small_anndata()
    local ok, err = pcall(function() ad.layers.Ms = T.zeros(3, 5) end)
    assert.is_false(ok)
    assert.matches("layers: 'Ms' has shape {3, 5} but the AnnData is 3 x 4 (expected {3, 4})", err, 1, true)
    assert.matches("anndata_spec.lua", err, 1, true) -- points at the assignment
    assert.has_error(function() ad.obsm.X_umap = T.zeros(4, 2) end,
      nil) -- wrong rows
    ok, err = pcall(function() ad.obsp.connectivities = T.zeros(3, 4) end)
    assert.matches("obsp: 'connectivities' has shape {3, 4}", err, 1, true)
    ok, err = pcall(function() ad.varm.PCs = T.zeros(3, 2) end)
    assert.matches("expected {4, ...}", err, 1, true)
    ok, err = pcall(function() ad.obs.n_counts = T.zeros(4) end)
    assert.matches("obs: column 'n_counts' has {4} but obs has 3 rows", err, 1, true)
    ok, err = pcall(function() ad.obs.clusters = { codes = T.tensor({ 1, 3, 0 }, { dtype = "i64" }), categories = { "a", "b" } } end)
    assert.matches("codes must lie in 0..2", err, 1, true)
    ok, err = pcall(function() ad.var.name = { "a", "b" } end)
    assert.matches("column 'name' has 2 entries but var has 4 rows", err, 1, true)
    ok, err = pcall(function() ad.X = T.zeros(4, 3) end)
    assert.matches("X has shape {4, 3}", err, 1, true)
    ok, err = pcall(function() ad.obs_names = { "a" } end)
    assert.matches("obs_names has 1 entries but the AnnData has 3", err, 1, true)
    ok, err = pcall(function() ad.n_obs = 5 end)
    assert.matches("read-only", err, 1, true)
    ok, err = pcall(function() ad.lyers = {} end)
    assert.matches("no field 'lyers'", err, 1, true)
    ok, err = pcall(function() ad.layers = { bad = T.zeros(1, 1) } end)
    assert.matches("layers: 'bad' has shape {1, 1}", err, 1, true)
    ok, err = pcall(velua.AnnData, { X = T.zeros(2, 2), layers = { s = T.zeros(3, 2) } })
    assert.matches("AnnData: layers: 's' has shape {3, 2}", err, 1, true)
    ok, err = pcall(velua.AnnData, { Y = 1 })
    assert.matches("unknown field 'Y'", err, 1, true)
    -- a valid assignment after the failures
    ad.layers.Ms = T.ones(3, 4)
    assert.are.same({ 3, 4 }, ad.layers.Ms:shape())
  end)

  it("subsets by positions, masks, names and tensors, copying every slot", function()
    local ad = small_anndata()
    local s = ad:subset({ 3, 1 }, { true, false, false, true })
    assert.are.equal(2, s.n_obs)
    assert.are.equal(2, s.n_vars)
    assert.are.same({ "c3", "c1" }, s.obs_names)
    assert.are.same({ "g1", "g4" }, s.var_names)
    assert.are.same({ { 5, 6 }, { 1, 0 } }, s.X:totable())
    assert.are.same({ { 5, 6 }, { 1, 0 } }, s.layers.spliced:to_dense():totable())
    assert.are.same({ { 5, 6 }, { 1, 2 } }, s.obsm.X_pca:totable())
    assert.are.same({ 2, 2 }, s.varm.PCs:shape())
    assert.are.same({ { 1, 0 }, { 0, 1 } }, s.obsp.distances:to_dense():totable())
    assert.are.same({ "GGG", "AAA" }, s.obs.barcode)
    assert.are.same({ 11, 3 }, s.obs.n_counts:totable())
    assert.are.same({ true, true }, s.var.highly_variable:totable())
    -- unused categories are dropped with their colours, as anndata does
    assert.are.same({ "a" }, s.obs.clusters.categories)
    assert.are.same({ 0, 1 }, s.obs.clusters.codes:totable())
    assert.are.same({ "#ff0000" }, s.uns.clusters_colors)
    assert.are.same({ "#ff0000", "#00ff00" }, ad.uns.clusters_colors)
    -- names, i64 tensors, bool tensors, nil
    local n = ad:subset({ "c2" }, nil)
    assert.are.same({ { 0, 3, 0, 4 } }, n.X:totable())
    local t = ad:subset(T.tensor({ 2, 3 }, { dtype = "i64" }), T.tensor({ false, true, true, false }))
    assert.are.same({ { 3, 0 }, { 0, 0 } }, t.X:totable())
    assert.are.same({ { 3, 0 }, { 0, 0 } }, t.layers.spliced:to_dense():totable())
    -- repeated and unordered columns in sparse matrices
    local r = ad:subset(nil, { 4, 2, 4 })
    assert.are.same({ { 0, 0, 0 }, { 4, 3, 4 }, { 6, 0, 6 } }, r.layers.spliced:to_dense():totable())
    assert.are.same(r.X:totable(), r.layers.spliced:to_dense():totable())
    -- the copy is independent
    s.X:fill_(0)
    assert.are.equal(1, ad.X:get(1, 1))
    assert.has_error(function() ad:subset({ 4 }) end)
    assert.has_error(function() ad:subset({ true, false }) end)
    assert.has_error(function() ad:subset({ "nope" }) end)
  end)

  it("copies deeply", function()
    local ad = small_anndata()
    local c = ad:copy()
    assert.is_true(same_anndata(ad, c))
    c.X:fill_(9)
    c.obsm.X_pca:fill_(9)
    c.uns.params.n = 5
    c.obs.barcode[1] = "TTT"
    c.layers.spliced:values():fill_(9)
    assert.are.equal(1, ad.X:get(1, 1))
    assert.are.equal(1, ad.obsm.X_pca:get(1, 1))
    assert.are.equal(30, ad.uns.params.n)
    assert.are.equal("AAA", ad.obs.barcode[1])
    assert.are.equal(1, ad.layers.spliced:values():get(1))
  end)

  it("concatenates with an inner join on var names and a batch label", function()
    local a = small_anndata()
    local b = velua.AnnData {
      X = T.tensor({ { 10, 20, 30 } }), var_names = { "g4", "g9", "g1" }, obs_names = { "d1" },
      obs = { clusters = { codes = T.tensor({ 1 }, { dtype = "i64" }), categories = { "z" } },
        n_counts = T.tensor({ 60 }, { dtype = "f32" }) },
      layers = { spliced = T.tensor({ { 1, 2, 3 } }) },
    }
    local c = velua.concat({ a, b }, { label = "condition", keys = { "WT", "KO" }, index_unique = "-" })
    assert.are.equal(4, c.n_obs)
    assert.are.same({ "g1", "g4" }, c.var_names)
    assert.are.same({ "c1-WT", "c2-WT", "c3-WT", "d1-KO" }, c.obs_names)
    assert.are.same({ { 1, 0 }, { 0, 4 }, { 5, 6 }, { 30, 10 } }, c.X:totable())
    assert.is_true(T.is_sparse(c.layers.spliced)) -- sparse + dense -> sparse
    assert.are.same({ { 1, 0 }, { 0, 4 }, { 5, 6 }, { 3, 1 } }, c.layers.spliced:to_dense():totable())
    assert.are.same({ "WT", "KO" }, c.obs.condition.categories)
    assert.are.same({ 1, 1, 1, 2 }, c.obs.condition.codes:totable())
    assert.are.same({ "a", "b", "z" }, c.obs.clusters.categories)
    assert.are.same({ 1, 2, 0, 3 }, c.obs.clusters.codes:totable())
    assert.are.equal("f64", c.obs.n_counts:dtype())
    assert.is_nil(c.obs.barcode) -- not in both
    assert.is_nil(c.obsm.X_pca)
    assert.are.same({}, velua.AnnData.keys(c.var))
    local d = velua.concat({ a, a }, { merge = "same" })
    assert.are.same({ "highly_variable" }, velua.AnnData.keys(d.var))
    assert.are.same({ "0", "1" }, velua.concat({ a, a }, { label = "batch" }).obs.batch.categories)
    assert.are.same({ 6, 2 }, d.obsm.X_pca:shape())
    assert.has_error(function() velua.concat({ a, b }, { lable = "x" }) end)
  end)
end)

describe("read_h5ad on the shared data and oracle files", function()
  local files = sorted_keys(REF)

  it("loads every file with the shapes, dtypes, checksums and categories h5py reports", function()
    local n_files = 0
    for _, rel in ipairs(files) do
      local path = h.shared_path(rel)
      if path then
        n_files = n_files + 1
        local ref = REF[rel]
        local ad = velua.read_h5ad(path)
        assert.are.equal(ref.n_obs, ad.n_obs, rel)
        assert.are.equal(ref.n_vars, ad.n_vars, rel)
        assert.are.equal(ref.n_obs, #ad.obs_names, rel)
        assert.are.equal(ref.n_vars, #ad.var_names, rel)
        local count = 0
        for key, m in pairs(ref.matrices) do
          count = count + 1
          local where = rel .. " " .. key
          local got
          if key == "X" then got = ad.X else
            local slot, k = key:match("^(%w+)/(.*)$")
            got = ad[slot][k]
          end
          assert.is_not_nil(got, where)
          assert.are.same(m.shape, shape_of(got), where)
          assert.are.equal(m.dtype, dtype_of(got), where)
          assert.are.equal(m.sparse, T.is_sparse(got), where)
          local s, ss, nan = checksum(got)
          assert.are.equal(m.nan, nan, where)
          assert.is_true(h.approx_equal(s, m.sum, 1e-9, 1e-9), where .. " sum " .. s .. " vs " .. m.sum)
          assert.is_true(h.approx_equal(ss, m.sumsq, 1e-9, 1e-9), where .. " sumsq")
        end
        local total = (ad.X and 1 or 0)
        for _, slot in ipairs { "layers", "obsm", "varm", "obsp", "varp" } do total = total + #ad[slot] end
        assert.are.equal(count, total, rel .. ": every matrix is checked")
        for key, c in pairs(ref.categoricals) do
          local axis, col = key:match("^(%w+)/(.*)$")
          local got = ad[axis][col]
          assert.is_not_nil(got, rel .. " " .. key)
          local cats = {}
          for i, v in ipairs(got.categories) do cats[i] = tostring(v) end
          assert.are.same(c.categories, cats, rel .. " " .. key)
          local counts, missing = {}, 0
          for i = 1, #cats do counts[i] = 0 end
          for _, code in ipairs(got.codes:totable()) do
            if code == 0 then missing = missing + 1 else counts[code] = counts[code] + 1 end
          end
          assert.are.same(c.counts, counts, rel .. " " .. key)
          assert.are.equal(c.missing, missing, rel .. " " .. key)
        end
      end
    end
    if n_files == 0 then pending("../shared is not present") end
  end)

  it("reads the columns, names and uns values as documented", function()
    local path = h.shared_path("data/dentategyrus_cellrank/adata_100.h5ad")
    if not path then return pending("../shared is not present") end
    local ad = velua.read_h5ad(path)
    -- legacy 0.7 file: categories by object reference, gzip datasets
    assert.are.equal("i64", ad.obs.clusters.codes:dtype())
    assert.are.equal("bool", ad.var.velocity_genes:dtype())
    assert.are.equal(103, ad.var.velocity_genes:to("i64"):sum():item())
    assert.are.equal("f32", ad.obs.n_counts:dtype())
    assert.are.equal("string", type(ad.var.symbol[1]))
    assert.are.equal(50, #ad.raw.var_names)
    assert.are.same({ 100, 50 }, ad.raw.X:shape())
    assert.are.equal("connectivities", ad.uns.neighbors.connectivities_key)
    assert.are.equal(30, ad.uns.neighbors.params.n_neighbors)
    assert.are.equal("integer", math.type(ad.uns.neighbors.params.n_neighbors))
    assert.is_true(ad.uns.pca.params.zero_center)
    assert.are.equal("dynamical", ad.uns.velocity_params.mode)
    assert.are.same({ 5, 95 }, ad.uns.velocity_params.perc:totable())
    assert.are.equal(12, #ad.uns.clusters_colors)
    local vis = h.shared_path("data/visium_squidpy/test_data.h5ad")
    local v = velua.read_h5ad(vis)
    assert.are.same({ 100, 100, 3 }, v.uns.spatial.V1_Adult_Mouse_Brain.images.hires:shape())
    assert.are.equal("i64", v.obsm.spatial:dtype())
    assert.are.equal("i64", v.obs.in_tissue:dtype())
    local p = velua.read_h5ad(h.shared_path("data/pancreas_veloviz/pancreas.h5ad"))
    assert.are.equal(1263837, p.X:nnz())
    assert.are.equal(563203, p.layers.unspliced:nnz())
    assert.matches("veloviz", p.uns.source)
  end)

  it("loads only the parts asked for", function()
    local path = h.shared_path("oracle/dentategyrus100_scvelo.h5ad")
    if not path then return pending("../shared is not present") end
    local ad = velua.read_h5ad(path, { X = false, layers = { "Ms", "Mu" }, obs = { "n_counts" },
      var = false, obsm = false, obsp = { "distances" }, varm = false, uns = { "pca" } })
    assert.is_nil(ad.X)
    assert.are.same({ "Ms", "Mu" }, velua.AnnData.keys(ad.layers))
    assert.are.same({ "n_counts" }, velua.AnnData.keys(ad.obs))
    assert.are.same({}, velua.AnnData.keys(ad.var))
    assert.are.equal(298, #ad.var_names)
    assert.are.same({ "distances" }, velua.AnnData.keys(ad.obsp))
    assert.are.same({ "pca" }, velua.AnnData.keys(ad.uns))
    local ok, err = pcall(velua.read_h5ad, path, { layers = { "Mx" } })
    assert.is_false(ok)
    assert.matches("no layer 'Mx' (available: Ms, Mss, Mu", err, 1, true)
    ok, err = pcall(velua.read_h5ad, path, { layer = true })
    assert.matches("unknown option 'layer'", err, 1, true)
    ok, err = pcall(velua.read_h5ad, path, { obs = 3 })
    assert.matches("option obs must be true, false or a list of keys", err, 1, true)
  end)
end)

describe("write_h5ad", function()
  it("round-trips every shared file through velua, element by element", function()
    local any = false
    for i, rel in ipairs(sorted_keys(REF)) do
      local path = h.shared_path(rel)
      if path then
        any = true
        local ad = velua.read_h5ad(path)
        local out = tmpname()
        ad:write_h5ad(out, { compression = i % 2 == 0 and "gzip" or nil })
        local back = velua.read_h5ad(out)
        os.remove(out)
        local ok, where = same_anndata(ad, back)
        assert.is_true(ok, rel .. ": " .. tostring(where))
      end
    end
    if not any then pending("../shared is not present") end
  end)

  it("round-trips a constructed AnnData with every kind of column and uns value", function()
    local ad = small_anndata()
    ad.obs.score = { values = T.tensor({ 1, 2, 3 }, { dtype = "i64" }), mask = T.tensor({ false, true, false }) }
    ad.obs.flag = { values = T.tensor({ true, false, true }), mask = T.tensor({ false, false, true }) }
    ad.obs.level = { codes = T.tensor({ 2, 1, 2 }, { dtype = "i64" }), categories = { 10, 20 }, ordered = true }
    ad.var.count = T.tensor({ 1, 2, 3, 4 }, { dtype = "i64" })
    ad.varp.corr = T.eye(4, { dtype = "f64" })
    ad.uns.empty = {}
    ad.uns.nested = { a = { b = { c = T.arange(3) } }, pi = 3.25, big = math.maxinteger, no = false,
      s = "héllo" }
    ad.uns.graph = T.sparse_from_dense(T.eye(2))
    -- Lua lists of numbers or booleans are stored as arrays and come back as tensors
    ad.uns.lists = { ints = { 1, 2, 3 }, floats = { 0.5, 1 }, bools = { true, false } }
    local out = tmpname()
    ad:write_h5ad(out, { compression = "gzip" })
    local back = velua.read_h5ad(out)
    assert.are.equal("i64", back.uns.lists.ints:dtype())
    assert.are.same({ 1, 2, 3 }, back.uns.lists.ints:totable())
    assert.are.equal("f64", back.uns.lists.floats:dtype())
    assert.are.same({ 0.5, 1 }, back.uns.lists.floats:totable())
    assert.are.same({ true, false }, back.uns.lists.bools:totable())
    ad.uns.lists, back.uns.lists = nil, nil
    local ok, where = same_anndata(ad, back)
    assert.is_true(ok, where)
    assert.is_true(back.obs.level.ordered)
    -- the layout anndata 0.8 expects
    local f <close> = core.h5_open(out)
    assert.are.equal("anndata", core.h5_read_attr(f, "/", "encoding-type"))
    assert.are.equal("0.1.0", core.h5_read_attr(f, "/", "encoding-version"))
    assert.are.equal("dataframe", core.h5_read_attr(f, "/obs", "encoding-type"))
    assert.are.equal("0.2.0", core.h5_read_attr(f, "/obs", "encoding-version"))
    assert.are.equal("_index", core.h5_read_attr(f, "/obs", "_index"))
    assert.are.same(velua.AnnData.keys(ad.obs), core.h5_read_attr(f, "/obs", "column-order"))
    assert.are.equal("categorical", core.h5_read_attr(f, "/obs/clusters", "encoding-type"))
    assert.is_false(core.h5_read_attr(f, "/obs/clusters", "ordered"))
    assert.are.same({ 0, 1, -1 }, core.h5_read(f, "/obs/clusters/codes"):totable())
    assert.are.equal(1, core.h5_info(f, "/obs/clusters/codes").size) -- int8 codes
    assert.are.equal("csr_matrix", core.h5_read_attr(f, "/layers/spliced", "encoding-type"))
    assert.are.same({ 3, 4 }, core.h5_read_attr(f, "/layers/spliced", "shape"):totable())
    assert.are.equal(4, core.h5_info(f, "/layers/spliced/indices").size) -- int32 indices
    assert.are.equal("nullable-integer", core.h5_read_attr(f, "/obs/score", "encoding-type"))
    assert.are.equal("dict", core.h5_read_attr(f, "/uns", "encoding-type"))
    assert.are.equal("numeric-scalar", core.h5_read_attr(f, "/uns/nested/pi", "encoding-type"))
    assert.are.equal("string", core.h5_read_attr(f, "/uns/nested/s", "encoding-type"))
    assert.are.equal("string-array", core.h5_read_attr(f, "/uns/clusters_colors", "encoding-type"))
    assert.are.equal("array", core.h5_read_attr(f, "/X", "encoding-type"))
    core.h5_close(f)
    os.remove(out)
  end)

  it("leaves nothing behind when writing fails", function()
    local out = tmpname()
    local ad = small_anndata()
    ad.uns.bad = { fn = print }
    local ok, err = pcall(function() ad:write_h5ad(out) end)
    assert.is_false(ok)
    assert.matches("element '/uns/bad/fn': cannot store a function", err, 1, true)
    assert.matches("nothing written", err, 1, true)
    assert.is_nil(io.open(out, "rb"))
    local dir = out:match("^(.*)/")
    local p = io.popen("ls " .. dir .. " | grep -c " .. out:match("[^/]+$") .. ".tmp")
    assert.are.equal("0", p:read("l"))
    p:close()
    ok, err = pcall(function() ad:write_h5ad(out, { compression = "lzf" }) end)
    assert.matches("compression must be \"gzip\" or nil", err, 1, true)
  end)

  it("writes files Python anndata 0.8 reads back identically (needs python3-anndata)", function()
    if not h.python_has("anndata, scipy") then
      return h.missing_tool("/usr/bin/python3 cannot import anndata (Debian: python3-anndata)")
    end
    local script = tmpname(".py")
    local f = assert(io.open(script, "w"))
    f:write(PY_COMPARE)
    f:close()
    local pairs_ = {}
    local outs = {}
    local ad = small_anndata()
    ad.obs.level = { codes = T.tensor({ 2, 1, 2 }, { dtype = "i64" }), categories = { 10, 20 }, ordered = true }
    ad.obs.score = { values = T.tensor({ 1, 2, 3 }, { dtype = "i64" }), mask = T.tensor({ false, true, false }) }
    local own = tmpname()
    ad:write_h5ad(own, { compression = "gzip" })
    outs[#outs + 1] = own
    for i, rel in ipairs(sorted_keys(REF)) do
      local path = h.shared_path(rel)
      if path then
        local out = tmpname()
        velua.read_h5ad(path):write_h5ad(out, { compression = i % 2 == 1 and "gzip" or nil })
        pairs_[#pairs_ + 1] = path .. " " .. out
        outs[#outs + 1] = out
      end
    end
    local cmd = "/usr/bin/python3 " .. script .. " " .. own .. " " .. table.concat(pairs_, " ") .. " 2>&1"
    local p = io.popen(cmd)
    local report = p:read("a")
    p:close()
    os.remove(script)
    for _, o in ipairs(outs) do os.remove(o) end
    assert.matches("^own ok\n", report)
    local n = 0
    for line in report:gmatch("[^\n]+") do
      if line ~= "own ok" then
        assert.matches("^SAME ", line)
        n = n + 1
      end
    end
    assert.are.equal(#pairs_, n, report)
  end)
end)

describe("read_h5ad on the pre-0.7 layout", function()
  -- obs/var/obsm as compound datasets, categories in uns/<col>_categories, a CSC X tagged
  -- h5sparse_format, no encoding attributes anywhere (as anndata 0.6 wrote)
  local function legacy_file()
    local path = tmpname()
    local f <close> = core.h5_open(path, "w")
    -- X (3 x 4) = [[1 0 2 0] [0 3 0 4] [5 0 0 6]] stored as CSC
    core.h5_create_group(f, "/X")
    core.h5_write_attr(f, "/X", "h5sparse_format", "csc")
    core.h5_write_attr(f, "/X", "h5sparse_shape", T.tensor({ 3, 4 }, { dtype = "i64" }))
    core.h5_write(f, "/X/data", T.tensor({ 1, 5, 3, 2, 4, 6 }))
    core.h5_write(f, "/X/indices", T.tensor({ 0, 2, 1, 0, 1, 2 }, { dtype = "i64" }), { dtype = "i32" })
    core.h5_write(f, "/X/indptr", T.tensor({ 0, 2, 3, 4, 6 }, { dtype = "i64" }), { dtype = "i32" })
    core.h5_write_compound(f, "/obs", {
      { "index", { "c1", "c2", "c3" } },
      { "clusters", T.tensor({ 1, 0, 1 }, { dtype = "i64" }) },
      { "n_counts", T.tensor({ 3, 7, 11 }, { dtype = "f64" }) },
      { "ok", T.tensor({ true, false, true }) },
    })
    core.h5_write_compound(f, "/var", {
      { "index", { "g1", "g2", "g3", "g4" } },
      { "gene_ids", { "E1", "E2", "E3", "E4" } },
    })
    core.h5_write_compound(f, "/obsm", { { "X_pca", T.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } }) } })
    core.h5_write(f, "/layers/spliced", T.tensor({ { 1, 0, 2, 0 }, { 0, 3, 0, 4 }, { 5, 0, 0, 6 } }))
    core.h5_write_strings(f, "/uns/clusters_categories", { "alpha", "beta" })
    core.h5_write_strings(f, "/uns/note", "made by hand", { fixed = 16 })
    core.h5_close(f)
    return path
  end

  it("reads compound dataframes, uns categories and CSC matrices", function()
    local path = legacy_file()
    local ad = velua.read_h5ad(path)
    os.remove(path)
    assert.are.equal(3, ad.n_obs)
    assert.are.equal(4, ad.n_vars)
    assert.are.same({ "c1", "c2", "c3" }, ad.obs_names)
    assert.are.same({ "g1", "g2", "g3", "g4" }, ad.var_names)
    assert.is_true(T.is_sparse(ad.X))
    assert.are.same({ { 1, 0, 2, 0 }, { 0, 3, 0, 4 }, { 5, 0, 0, 6 } }, ad.X:to_dense():totable())
    assert.are.same({ "alpha", "beta" }, ad.obs.clusters.categories)
    assert.are.same({ 2, 1, 2 }, ad.obs.clusters.codes:totable())
    assert.is_nil(ad.uns.clusters_categories)
    assert.are.same({ 3, 7, 11 }, ad.obs.n_counts:totable())
    assert.are.same({ true, false, true }, ad.obs.ok:totable())
    assert.are.same({ "E1", "E2", "E3", "E4" }, ad.var.gene_ids)
    assert.are.same({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, ad.obsm.X_pca:totable())
    assert.are.same(ad.X:to_dense():totable(), ad.layers.spliced:totable())
    assert.are.equal("made by hand", ad.uns.note)
  end)
end)

describe("read_h5ad errors name the file and the element", function()
  local function expect_error(path, pattern, opts)
    local ok, err = pcall(velua.read_h5ad, path, opts)
    assert.is_false(ok, "expected an error matching " .. pattern)
    assert.matches("read_h5ad: ", err, 1, true)
    assert.matches(path, err, 1, true)
    assert.matches(pattern, err, 1, true)
    return err
  end

  -- a small valid file to damage
  local function good_file()
    local path = tmpname()
    small_anndata():write_h5ad(path)
    return path
  end

  it("missing file, not HDF5, truncated file", function()
    expect_error("/nonexistent/dir/x.h5ad", "no such file")
    local txt = tmpname(".txt")
    local f = assert(io.open(txt, "w"))
    f:write("obs,var\n1,2\n")
    f:close()
    expect_error(txt, "not an HDF5 file")
    os.remove(txt)
    local path = good_file()
    local fh = assert(io.open(path, "rb"))
    local bytes = fh:read("a")
    fh:close()
    local cut = tmpname()
    fh = assert(io.open(cut, "wb"))
    fh:write(bytes:sub(1, #bytes // 2))
    fh:close()
    expect_error(cut, "truncated")
    os.remove(cut)
    os.remove(path)
  end)

  it("a layer with the wrong shape", function()
    local path = good_file()
    local f = core.h5_open(path, "r+")
    core.h5_write(f, "/layers/Ms", T.zeros(3, 5))
    core.h5_write_attr(f, "/layers/Ms", "encoding-type", "array")
    core.h5_close(f)
    expect_error(path, "element '/layers/Ms': layers: 'Ms' has shape {3, 5} but the AnnData is 3 x 4")
    os.remove(path)
  end)

  it("an obs column of the wrong length and a corrupt categorical", function()
    local path = good_file()
    local f = core.h5_open(path, "r+")
    core.h5_write(f, "/obs/extra", T.zeros(7))
    core.h5_write_attr(f, "/obs", "column-order", { "barcode", "clusters", "n_counts", "extra" })
    core.h5_close(f)
    expect_error(path, "element '/obs/extra': obs: column 'extra' has {7} but obs has 3 rows")
    os.remove(path)
    path = good_file()
    f = core.h5_open(path, "r+")
    core.h5_write(f, "/obs/clusters/codes2", T.tensor({ 0, 5, 1 }, { dtype = "i64" }))
    core.h5_close(f)
    -- codes beyond the categories
    f = core.h5_open(path, "r+")
    core.h5_write(f, "/obs/cl2/codes", T.tensor({ 0, 5, 1 }, { dtype = "i64" }), { dtype = "i8" })
    core.h5_write_strings(f, "/obs/cl2/categories", { "a", "b" })
    core.h5_write_attr(f, "/obs/cl2", "encoding-type", "categorical")
    core.h5_write_attr(f, "/obs", "column-order", { "barcode", "cl2" })
    core.h5_close(f)
    expect_error(path, "element '/obs/cl2': categorical codes 0..5 do not fit 2 categories")
    os.remove(path)
  end)

  it("an unknown encoding-type", function()
    local path = good_file()
    local f = core.h5_open(path, "r+")
    core.h5_create_group(f, "/layers/fancy")
    core.h5_write_attr(f, "/layers/fancy", "encoding-type", "awkward-array")
    core.h5_write_attr(f, "/layers/fancy", "encoding-version", "0.1.0")
    core.h5_close(f)
    expect_error(path, "element '/layers/fancy': unknown encoding-type 'awkward-array' (version 0.1.0)")
    -- the rest of the file still loads when the bad element is not asked for
    local ad = velua.read_h5ad(path, { layers = { "spliced" } })
    assert.are.same({ "spliced" }, velua.AnnData.keys(ad.layers))
    os.remove(path)
  end)

  it("an unsupported compression filter", function()
    local path = good_file()
    local f = core.h5_open(path, "r+")
    -- 32000 is LZF (h5py's own filter), which libhdf5 does not ship
    core.h5_write(f, "/obsm/X_lzf", T.ones(3, 2), { filter = 32000 })
    core.h5_write_attr(f, "/obsm/X_lzf", "encoding-type", "array")
    core.h5_close(f)
    expect_error(path, "element '/obsm/X_lzf': dataset '/obsm/X_lzf' uses compression filter")
    expect_error(path, "(id 32000)")
    os.remove(path)
  end)

  it("a sparse matrix whose arrays disagree", function()
    local path = good_file()
    local f = core.h5_open(path, "r+")
    core.h5_create_group(f, "/obsp/bad")
    core.h5_write_attr(f, "/obsp/bad", "encoding-type", "csr_matrix")
    core.h5_write_attr(f, "/obsp/bad", "shape", T.tensor({ 3, 3 }, { dtype = "i64" }))
    core.h5_write(f, "/obsp/bad/data", T.ones(2))
    core.h5_write(f, "/obsp/bad/indices", T.tensor({ 0, 7 }, { dtype = "i64" }))
    core.h5_write(f, "/obsp/bad/indptr", T.tensor({ 0, 1, 2, 2 }, { dtype = "i64" }))
    core.h5_close(f)
    expect_error(path, "element '/obsp/bad'")
    os.remove(path)
  end)
end)

describe("read_loom", function()
  -- 3 genes x 4 cells, as velocyto writes it (loompy 2: fixed-length ASCII with XML entities)
  local function write_loom(path)
    local f <close> = core.h5_open(path, "w")
    local m = T.tensor({ { 1, 0, 2, 0 }, { 0, 0, 0, 0 }, { 3, 4, 0, 5 } })
    core.h5_write(f, "/matrix", m, 4)
    core.h5_write(f, "/layers/spliced", m, 4)
    core.h5_write(f, "/layers/unspliced", T.tensor({ { 0, 1, 0, 0 }, { 2, 0, 0, 0 }, { 0, 0, 0, 7 } }, { dtype = "i64" }),
      { gzip = 4, dtype = "u16" })
    core.h5_write_strings(f, "/row_attrs/Gene", { "Actb", "Caf&#233;", "Gapdh" }, { fixed = 16 })
    core.h5_write_strings(f, "/row_attrs/Accession", { "E1", "E2", "E3" })
    core.h5_write(f, "/row_attrs/Selected", T.tensor({ 1, 0, 1 }, { dtype = "i64" }))
    core.h5_write_strings(f, "/col_attrs/CellID", { "cell1", "cell2", "cell3", "cell4" })
    core.h5_write_strings(f, "/col_attrs/Clusters", { "a", "b", "a", "c" }, { fixed = 1 })
    core.h5_write(f, "/col_attrs/umap", T.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 }, { 7, 8 } }, { dtype = "f64" }))
    core.h5_write(f, "/col_graphs/knn/a", T.tensor({ 0, 1, 3 }, { dtype = "i64" }))
    core.h5_write(f, "/col_graphs/knn/b", T.tensor({ 1, 0, 2 }, { dtype = "i64" }))
    core.h5_write(f, "/col_graphs/knn/w", T.tensor({ 1, 1, 0.5 }))
    core.h5_create_group(f, "/row_graphs")
    core.h5_write_attr(f, "/", "LOOM_SPEC_VERSION", "2.0.1")
    core.h5_close(f)
  end

  it("reads the matrix as cells x genes, layers, attributes, graphs and names", function()
    local path = tmpname(".loom")
    write_loom(path)
    local ad = velua.read_loom(path)
    local dense = velua.read_loom(path, { sparse = false, dtype = "f64" })
    os.remove(path)
    assert.are.equal(4, ad.n_obs)
    assert.are.equal(3, ad.n_vars)
    assert.are.same({ "cell1", "cell2", "cell3", "cell4" }, ad.obs_names)
    assert.are.same({ "Actb", "Café", "Gapdh" }, ad.var_names)
    assert.is_true(T.is_sparse(ad.X))
    local want = { { 1, 0, 3 }, { 0, 0, 4 }, { 2, 0, 0 }, { 0, 0, 5 } }
    assert.are.same(want, ad.X:to_dense():totable())
    assert.are.same(want, ad.layers.spliced:to_dense():totable())
    assert.are.same({ { 0, 2, 0 }, { 1, 0, 0 }, { 0, 0, 0 }, { 0, 0, 7 } }, ad.layers.unspliced:to_dense():totable())
    assert.are.same({ "a", "b", "a", "c" }, ad.obs.Clusters)
    assert.are.same({ "E1", "E2", "E3" }, ad.var.Accession)
    assert.are.same({ 1, 0, 1 }, ad.var.Selected:totable())
    assert.are.same({ 4, 2 }, ad.obsm.umap:shape())
    assert.are.same({ { 0, 1, 0, 0 }, { 1, 0, 0, 0 }, { 0, 0, 0, 0 }, { 0, 0, 0.5, 0 } }, ad.obsp.knn:to_dense():totable())
    assert.are.equal("2.0.1", ad.uns.LOOM_SPEC_VERSION)
    assert.is_nil(ad.obs.CellID)
    assert.are.same(want, dense.X:totable())
    assert.are.equal("f64", dense.X:dtype())
    -- and it writes as h5ad
    local out = tmpname()
    ad:write_h5ad(out)
    assert.is_true(same_anndata(ad, velua.read_h5ad(out)))
    os.remove(out)
  end)

  it("reads a file written by loompy (needs python3-loompy)", function()
    local path = tmpname(".loom")
    local code = [==[
import sys, numpy as np, loompy
m = np.array([[1, 0, 2, 0], [0, 0, 0, 0], [3, 4, 0, 5]], dtype=np.float32)
loompy.create(sys.argv[1], {"": m, "spliced": m, "unspliced": (m * 2).astype(np.uint16)},
              {"Gene": np.array(["Actb", "Café", "Gapdh"]), "score": np.arange(3.0)},
              {"CellID": np.array(["c1", "c2", "c3", "c4"]), "clusters": np.array(["x", "y", "x", "y"])})
]==]
    local script = tmpname(".py")
    local f = assert(io.open(script, "w"))
    f:write(code)
    f:close()
    local ok = os.execute("/usr/bin/python3 " .. script .. " " .. path .. " >/dev/null 2>&1")
    os.remove(script)
    if not ok then return require("support.helpers").missing_tool("/usr/bin/python3 cannot import loompy (Debian: python3-loompy)") end
    local ad = velua.read_loom(path)
    os.remove(path)
    assert.are.same({ "c1", "c2", "c3", "c4" }, ad.obs_names)
    assert.are.same({ "Actb", "Café", "Gapdh" }, ad.var_names)
    assert.are.same({ { 1, 0, 3 }, { 0, 0, 4 }, { 2, 0, 0 }, { 0, 0, 5 } }, ad.X:to_dense():totable())
    assert.are.same({ { 2, 0, 6 }, { 0, 0, 8 }, { 4, 0, 0 }, { 0, 0, 10 } }, ad.layers.unspliced:to_dense():totable())
    assert.are.same({ "x", "y", "x", "y" }, ad.obs.clusters)
    assert.are.same({ 0, 1, 2 }, ad.var.score:totable())
    assert.are.equal("3.0.0", ad.uns.LOOM_SPEC_VERSION)
  end)
end)

describe("AnnData subset along one axis", function()
  it("keeps the other axis's columns", function()
    local velua = require "velua"
    local ad = velua.datasets.simulate { n_obs = 30, n_vars = 8, seed = 2 }
    local genes = ad:subset(nil, { 1, 3, 5 })
    assert.is_truthy(genes.obs.clusters, "obs columns lost by subset(nil, genes)")
    assert.are.equal(30, genes.n_obs)
    assert.are.equal(3, genes.n_vars)
    local cells = ad:subset({ 2, 4 }, nil)
    assert.is_truthy(cells.var.true_beta, "var columns lost by subset(cells, nil)")
    assert.are.equal(8, cells.n_vars)
  end)
end)
